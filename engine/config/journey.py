"""Journeys (Lead-Nurturing-Prozesse; seed 001 Learning 6) as marketers write them in YAML."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from engine.config.types import (
    Code,
    Duration,
    EventType,
    FitGrade,
    Frozen,
    HeaderText,
    Id,
    TemplateName,
    ripen_error,
)
from engine.stages import JourneyStage

#: The action keys a step may have; each step has exactly one.
STEP_ACTIONS = ("send", "wait", "branch", "advance", "goal", "exit")


class Variant(Frozen):
    """One arm of an A/B test on a send step: what it changes; the rest is the step's own.
    A variant that changes nothing is the control."""

    id: Id
    share: int = Field(ge=1, le=99, description="percent of the step's leads (all add up to 100)")
    subject: HeaderText | None = Field(default=None, description="this variant's subject")
    content: Id | None = Field(default=None, description="this variant's content item")
    template: TemplateName | None = Field(default=None, description="this variant's template")


class WinnerRule(Frozen):
    """Once a variant beats every other one with ``probability``, send it to everyone."""

    metric: Literal["click", "open", "next_stage"] = Field(
        default="click", description="what a variant must win on")
    probability: float = Field(default=0.95, ge=0.8, lt=1.0,
                               description="Bayesian probability of being the best")
    min_sends: int = Field(default=100, ge=10, le=1_000_000,
                           description="mails per variant before a winner can be named")


class SendAction(Frozen):
    """Mail one content item with a template."""

    content: Id
    template: TemplateName
    subject: HeaderText | None = Field(
        default=None, description="a template like the mail's own, on one line: "
        "'{{ content.title }} für {{ lead.company }}' (default: the content's title)")
    fast_lane_offer: Id | None = Field(
        default=None, description="a fast_lane content item offered alongside (Sales Fast Lane)"
    )
    variants: list[Variant] = Field(
        default_factory=list, description="an A/B test: each lead gets one variant, always the "
        "same, by its share")
    winner: WinnerRule | None = Field(
        default=None, description="send the winning variant to everyone once it is clear")

    @model_validator(mode="after")
    def _a_real_test(self) -> SendAction:
        if self.winner is not None and not self.variants:
            raise ripen_error("a winner rule needs variants", "add variants, or drop winner")
        if not self.variants:
            return self
        if len(self.variants) < 2:
            raise ripen_error("an A/B test needs at least two variants",
                              "add a second variant (one without changes is the control)")
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            raise ripen_error("variant ids must differ", "name them a, b, c …")
        total = sum(v.share for v in self.variants)
        if total != 100:
            raise ripen_error(f"the variants' shares add up to {total}, not 100",
                              "make the shares add up to 100 (percent)")
        return self


class Condition(Frozen):
    """What a branch waits for: an event, or a score reaching a level."""

    event: EventType | None = None
    content: Id | None = Field(default=None, description="only events on this content item")
    stage: JourneyStage | None = Field(
        default=None, description="only events on content of this stage"
    )
    engagement_at_least: int | None = Field(default=None, ge=0)
    fit_at_least: FitGrade | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        kinds = [
            name
            for name in ("event", "engagement_at_least", "fit_at_least")
            if getattr(self, name) is not None
        ]
        if len(kinds) != 1:
            raise ripen_error(
                "a condition needs exactly one of event, engagement_at_least, fit_at_least"
                + (f" (found {', '.join(kinds)})" if kinds else ""),
                "write e.g. `when: {event: click, stage: INF}` or "
                "`when: {engagement_at_least: 40}`",
            )
        if self.event is None and (self.content or self.stage):
            raise ripen_error(
                "content and stage narrow an event; they need `event`",
                "add `event: click` (or download, visit …)",
            )
        return self


class BranchAction(Frozen):
    """Wait up to ``within`` for a condition; go to ``then`` if met, else ``otherwise``."""

    when: Condition
    within: Duration
    then: Id = Field(description="step id, or `next`")
    otherwise: Id = Field(description="step id, or `next`")


class _Step(Frozen):
    id: Id


class SendStep(_Step):
    send: SendAction


class WaitStep(_Step):
    wait: Duration


class BranchStep(_Step):
    branch: BranchAction


class AdvanceStep(_Step):
    advance: JourneyStage = Field(description="move the lead to this stage's first step")


class GoalStep(_Step):
    goal: str = Field(min_length=1, description="the goal reached; recorded, then go on")


class ExitStep(_Step):
    exit: Code = Field(description="reason code; the lead leaves the journey")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [key for key in STEP_ACTIONS if key in value]
        return found[0] if len(found) == 1 else None
    if isinstance(value, _Step):
        for key in STEP_ACTIONS:
            if key in type(value).model_fields:
                return key
    return None


Step = Annotated[
    Annotated[SendStep, Tag("send")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[AdvanceStep, Tag("advance")]
    | Annotated[GoalStep, Tag("goal")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(
        _step_kind,
        custom_error_type="ripen",
        custom_error_message="a step needs exactly one of send, wait, branch, advance, goal, exit",
        custom_error_context={
            "message": "a step needs exactly one of send, wait, branch, advance, goal, exit",
            "hint": "split it into several steps, e.g. `- {id: inf-1, send: …}` then "
            "`- {id: inf-2, wait: 3d}`",
        },
    ),
]


def _clicks_and_downloads() -> list[EventType]:
    return ["click", "download"]


class StageExit(Frozen):
    """The stage's exit rule: enough engagement with its content moves the lead on."""

    engaged: int = Field(default=1, ge=1, description="events on this stage's content needed")
    events: list[EventType] = Field(default_factory=_clicks_and_downloads, min_length=1)
    to: JourneyStage | None = Field(default=None, description="default: the next stage")
    skip_ahead: bool = Field(
        default=True, description="engaging with a later stage's content jumps there"
    )


class StagePlan(Frozen):
    """The steps of one stage, in order, and its exit rule."""

    steps: list[Step] = Field(min_length=1)
    exit: StageExit | None = Field(
        default=None,
        description="default: one click or download on this stage's content → next stage; "
        "the journey's last stage has none (the lead waits for the MQL rule)",
    )


class Stages(Frozen):
    """The stages of a journey; nurture journeys use INF–BEW, customers AFS/WIK/CUS."""

    INF: StagePlan | None = None
    BEF: StagePlan | None = None
    EVA: StagePlan | None = None
    BEW: StagePlan | None = None
    AFS: StagePlan | None = None
    WIK: StagePlan | None = None
    CUS: StagePlan | None = None

    def declared(self) -> list[tuple[JourneyStage, StagePlan]]:
        """The stages present, in funnel order."""
        return [
            (stage, plan)
            for stage in JourneyStage
            if (plan := getattr(self, stage.value)) is not None
        ]


class SlowestCase(Frozen):
    """What happens to a lead that never engages: after ``after`` without engagement."""

    after: Duration
    move_to: Id | None = Field(
        default=None, description="journey to continue in (e.g. a long-term newsletter); "
        "empty = leave the journey"
    )


class InFlight(Frozen):
    """What happens to leads already in the journey when a new version goes live."""

    policy: Literal["pin", "migrate", "drain"] = "pin"
    step_map: dict[str, str] = Field(
        default_factory=dict, description="migrate: old step id → new step id"
    )


class Journey(Frozen):
    """One journey per persona, plus recycling and after-sales journeys."""

    id: Id
    name: str = Field(min_length=1)
    description: str = ""
    kind: Literal["nurture", "recycle", "after_sales"] = "nurture"
    persona: Id | None = Field(default=None, description="required for nurture journeys")
    stages: Stages
    slowest_case: SlowestCase
    in_flight: InFlight = InFlight()
    reenroll_after: Duration | None = Field(
        default=None, description="a lead may enter again this long after leaving; empty = never"
    )

    @model_validator(mode="after")
    def _shape(self) -> Journey:
        if self.kind == "nurture" and self.persona is None:
            raise ripen_error(
                "a nurture journey needs a persona", "add `persona: <persona id>`"
            )
        if not self.stages.declared():
            raise ripen_error("the journey has no stages", "add at least `stages: {INF: …}`")
        return self

    def cadence(self) -> timedelta:
        """The sum of all waits: how long the journey's content lasts at the slowest pace."""
        total = timedelta()
        for _, plan in self.stages.declared():
            for step in plan.steps:
                if isinstance(step, WaitStep):
                    total += step.wait
                elif isinstance(step, BranchStep):
                    total += step.branch.within
        return total
