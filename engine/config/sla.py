"""The service-level agreement between marketing and sales (``config/sla.yaml``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import AnyHttpUrl, EmailStr, Field, field_validator, model_validator

from engine.config.types import (
    ENV_HINT,
    ENV_PATTERN,
    Code,
    ContentType,
    Duration,
    EventType,
    FitGrade,
    Frozen,
    Id,
    ripen_error,
)
from engine.stages import BuyingStage


class MqlRule(Frozen):
    """All conditions given must hold; the MQL rule holds when any rule does."""

    fit_at_least: FitGrade | None = None
    engagement_at_least: int | None = Field(default=None, ge=0)
    stage: BuyingStage | None = None
    downloaded_type: list[ContentType] = Field(
        default_factory=list, description="the lead downloaded content of one of these types"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> MqlRule:
        if (self.fit_at_least is None and self.engagement_at_least is None
                and self.stage is None and not self.downloaded_type):
            raise ripen_error(
                "an MQL rule needs at least one condition (an empty rule would hand over "
                "every lead: the green-banana effect)",
                "e.g. `{fit_at_least: B, engagement_at_least: 60}`",
            )
        return self


class Mql(Frozen):
    rules: list[MqlRule] = Field(min_length=1)


class FastLaneSignal(Frozen):
    """An event that hands a lead over at once, e.g. a pricing-page visit with high fit."""

    event: EventType
    page: str | None = Field(default=None, description="URL path for visit events, e.g. /pricing")
    content: Id | None = None
    fit_at_least: FitGrade | None = None


class FastLane(Frozen):
    """Sales Fast Lane (seed 002 §5.4): ready leads go to sales whatever their score."""

    contact_request: bool = True
    fast_lane_content: bool = True
    signals: list[FastLaneSignal] = Field(default_factory=list)


class SalesResponse(Frozen):
    accept_within: Duration = Field(description="sales answers a handover within this time")
    escalate_to: EmailStr = Field(description="who hears of a breach")


class Rep(Frozen):
    id: Id
    name: str = Field(min_length=1)
    email: EmailStr
    channel: Literal["direct", "partner"] = "direct"
    active: bool = True


class RoutingMatch(Frozen):
    regions: list[str] = Field(default_factory=list)
    industries: list[str] = Field(default_factory=list)
    company_size_min: int | None = Field(default=None, ge=1)
    company_size_max: int | None = Field(default=None, ge=1)
    personas: list[Id] = Field(default_factory=list)


class RoutingRule(Frozen):
    """Territory/industry rules come first; the first matching rule picks the rep pool."""

    id: Id
    when: RoutingMatch
    assign: list[Id] = Field(min_length=1, description="rep ids sharing these leads")


class Routing(Frozen):
    rules: list[RoutingRule] = Field(default_factory=list)
    period: Literal["month", "quarter", "year"] = "quarter"
    tolerance: float = Field(
        default=0.15, gt=0, lt=1, description="allowed spread of count and mean grade per rep"
    )


WebhookEvent = Literal["handover.created", "handover.escalated", "handover.answered",
                       "handover.closed", "lead.unsubscribed", "consent.withdrawn",
                       "lead.erased"]


def _created_only() -> list[WebhookEvent]:
    return ["handover.created"]


class WebhookEndpoint(Frozen):
    """A CRM or chat endpoint receiving signed handovers (Standard Webhooks)."""

    id: Id
    url: AnyHttpUrl
    secret_env: str = Field(description="environment variable holding the whsec_… secret")
    events: list[WebhookEvent] = Field(default_factory=_created_only, min_length=1)
    allow_private: bool = Field(
        default=False, description="allow loopback/private addresses (tests, internal CRMs)"
    )
    timeout_seconds: int = Field(default=15, ge=1, le=30)
    #: Long enough for a CRM down over a long weekend (72 h and more) to get its backlog.
    retry_horizon: Duration = timedelta(days=5)

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value.startswith("whsec_"):
            raise ripen_error(
                "this is a secret, not the name of an environment variable; "
                "secrets never go into YAML",
                "put the secret into an environment variable, e.g. "
                "RIPEN_WEBHOOK_SECRET_CRM, and write `secret_env: RIPEN_WEBHOOK_SECRET_CRM`",
            )
        if not re.match(ENV_PATTERN, value):
            raise ripen_error(f'"{value}" is not an environment variable name', ENV_HINT)
        return value


class RejectionReason(Frozen):
    """Why sales rejects a handover; the lead goes back to nurturing (the "blue lines")."""

    code: Code
    label: str = Field(min_length=1)
    recycle_journey: Id
    cool_down: Duration


class Outcome(Frozen):
    """Where a lead goes after a sales outcome."""

    journey: Id
    cool_down: Duration | None = None


SalesOutcome = Literal["won", "lost", "no_time", "buying_center", "budget_frozen"]


class Planning(Frozen):
    """The conversion rates marketing and sales agreed to plan with (``ripen plan``)."""

    rates: list[str] = Field(
        default_factory=list,
        description="FROM:TO=RATE along target → lead → mql → sal → won, e.g. "
        "[lead:mql=25%, mql:sal=0.6, sal:won=0.3]; empty = history or the rule of ten")

    @field_validator("rates")
    @classmethod
    def _chain(cls, rates: list[str]) -> list[str]:
        from engine.plan import PlanError, parse_rates

        try:
            parse_rates(rates)
        except PlanError as exc:
            raise ripen_error(str(exc), "write e.g. `rates: [lead:mql=25%, mql:sal=0.6, "
                              "sal:won=0.3]`") from None
        return rates


class Sla(Frozen):
    """``config/sla.yaml``."""

    mql: Mql
    fast_lane: FastLane = FastLane()
    sales_response: SalesResponse
    reps: list[Rep] = Field(min_length=1)
    routing: Routing = Routing()
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)
    rejection_reasons: list[RejectionReason] = Field(min_length=1)
    outcomes: dict[SalesOutcome, Outcome] = Field(default_factory=dict)
    planning: Planning = Planning()
