"""The tables. Due-ness, leases and idempotency keys are indexed columns of our own.

Naming: one table per concept a marketer or operator would name. Every side effect (mail,
webhook) is an outbox row with a unique idempotency key, written in the same transaction as
the state change that decided it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from engine.store.types import UtcDateTime


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Account(SQLModel, table=True):
    """The company. In B2B the customer is a company; a lead is a person acting for it."""

    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    domain: str | None = Field(default=None, max_length=253, unique=True)
    industry: str | None = Field(default=None, max_length=100)
    company_size: int | None = None
    region: str | None = Field(default=None, max_length=2, description="ISO 3166 country code")
    created_at: datetime = _when()


class Lead(SQLModel, table=True):
    """A person who can decide for (or influence) an account."""

    __tablename__ = "lead"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=32, unique=True, description="random; used in tokens")
    email: str | None = Field(default=None, max_length=320, unique=True,
                              description="normalised; NULL once erased")
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    job_title: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    language: str = Field(default="de", max_length=2)
    time_zone: str | None = Field(default=None, max_length=64)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    persona_id: str | None = Field(default=None, max_length=80, index=True)
    status: str = Field(default="pending", max_length=20, index=True,
                        description="pending | confirmed | unsubscribed | suppressed | erased")
    funnel_stage: str = Field(default="INF", max_length=3, index=True)
    sales_stage: str | None = Field(default=None, max_length=3, index=True,
                                    description="MQL | SAL | SFC … ABS while sales has the lead")
    mql_at: datetime | None = _when(nullable=True)
    # When sales sent the lead back (reject, lost …): only evidence after it counts for MQL.
    recycled_at: datetime | None = _when(nullable=True)
    # Set when something that may make the lead an MQL happened and the rule was not yet
    # evaluated (profile change, confirmation); the tick evaluates these in batches.
    qualify_at: datetime | None = _when(nullable=True, index=True)
    source: str | None = Field(default=None, max_length=40)
    campaign: str | None = Field(default=None, max_length=120)
    # An existing customer (imported): the after-sales journey and the stage (AFS, WIK,
    # CUS) it enters once the address is confirmed.
    customer_journey: str | None = Field(default=None, max_length=80)
    customer_stage: str | None = Field(default=None, max_length=3)
    bant_authority: bool = False
    bant_need: bool = False
    bant_budget: bool = False
    bant_timeline_months: int | None = None
    consent_version: str | None = Field(default=None, max_length=40)
    tracking_consent: bool = False
    phone_consent: bool = False
    doi_nonce: str | None = Field(default=None, max_length=32, unique=True,
                                  description="random id inside the confirmation token")
    doi_requested_at: datetime | None = _when(nullable=True, index=True)
    doi_reminded_at: datetime | None = _when(nullable=True)
    confirmed_at: datetime | None = _when(nullable=True)
    unsubscribed_at: datetime | None = _when(nullable=True)
    mail_paused_until: datetime | None = _when(nullable=True)
    # Details a public sign-up gave for an already confirmed lead: they wait here until the
    # address confirms them through the link of that request (``doi_nonce``), so nobody
    # else can rewrite a confirmed profile.
    pending_profile: dict[str, Any] | None = Field(default=None,
                                                   sa_column=Column(JSON, nullable=True))
    # The implicit score kept running: the ledger's decayed implicit points (since the
    # recycle) as of ``implicit_points_at``, under scoring model ``implicit_points_model``.
    # Scoring a batch of events adds to it instead of reading the whole ledger; a value of
    # another model, or older than the recycle, is recomputed from the ledger.
    implicit_points: float | None = None
    implicit_points_at: datetime | None = _when(nullable=True)
    implicit_points_model: str | None = Field(default=None, max_length=12)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class ConsentRecord(SQLModel, table=True):
    """Append-only consent ledger: each request, confirmation and withdrawal, as shown."""

    __tablename__ = "consent_record"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int | None = Field(default=None, foreign_key="lead.id", index=True)
    purpose: str = Field(max_length=40, description="email_marketing | tracking | phone")
    action: str = Field(max_length=20, description="requested | confirmed | withdrawn | "
                        "paused")
    source: str | None = Field(default=None, max_length=40)
    campaign: str | None = Field(default=None, max_length=120)
    language: str | None = Field(default=None, max_length=2)
    text_version: str | None = Field(default=None, max_length=40)
    text_sha256: str | None = Field(default=None, max_length=64)
    text_shown: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    form: str | None = Field(default=None, max_length=120)
    method: str | None = Field(default=None, max_length=40)
    ip: str | None = Field(default=None, max_length=45)
    user_agent: str | None = Field(default=None, max_length=512)
    doi_message_id: str | None = Field(default=None, max_length=255)
    doi_sent_at: datetime | None = _when(nullable=True)
    # The confirmation request a `requested` or `confirmed` record belongs to (the random
    # id inside its link): a link confirms only the request it was sent for, once.
    request_id: str | None = Field(default=None, max_length=32, index=True)
    occurred_at: datetime = _when()


class Enrollment(SQLModel, table=True):
    """A lead's place in one journey: its stage, its step and when that step is due."""

    __tablename__ = "enrollment"
    __table_args__ = (
        # One active enrollment per lead and journey (partial unique index, both databases).
        Index("uq_enrollment_active", "lead_id", "journey_id", unique=True,
              sqlite_where=text("status = 'active'"),
              postgresql_where=text("status = 'active'")),
        # The due-step query: WHERE status='active' AND due_at <= now ORDER BY due_at.
        Index("ix_enrollment_due", "status", "due_at"),
        # The workbench's counts per step (a covering index: no table reads on 100k leads)
        # and one step's due enrollments (claim_due: journey, step, status, due_at).
        Index("ix_enrollment_place", "journey_id", "step_id", "status", "due_at"),
        # Quarantined leads are counted on every /health and tick (few rows, partial index).
        Index("ix_enrollment_quarantined", "journey_id",
              sqlite_where=text("status = 'quarantined'"),
              postgresql_where=text("status = 'quarantined'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    journey_id: str = Field(max_length=80)
    journey_version: str = Field(max_length=12)
    stage: str = Field(max_length=3)
    step_id: str = Field(max_length=80)
    status: str = Field(default="active", max_length=20,
                        description="active | paused | completed | exited | quarantined")
    due_at: datetime | None = _when(nullable=True)
    # A step that could not be done for this lead (its mail did not render, a filter failed
    # on its values): the enrollment stops here with the reason until an operator retries.
    quarantined_at: datetime | None = _when(nullable=True)
    quarantine_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _when(nullable=True)
    stage_entered_at: datetime = _when()
    step_entered_at: datetime | None = _when(nullable=True)
    last_engaged_at: datetime | None = _when(nullable=True)
    started_at: datetime = _when()
    ended_at: datetime | None = _when(nullable=True)
    exit_reason: str | None = Field(default=None, max_length=60)


class Event(SQLModel, table=True):
    """Something a lead did: click, download, visit, webinar, form, contact request …"""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_lead_time", "lead_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id")
    type: str = Field(max_length=40)
    content_id: str | None = Field(default=None, max_length=80)
    stage: str | None = Field(default=None, max_length=3)
    source: str | None = Field(default=None, max_length=40)
    is_scanner: bool = False
    idempotency_key: str | None = Field(default=None, max_length=120, unique=True)
    data: dict[str, Any] = _json()
    occurred_at: datetime = _when()
    recorded_at: datetime = _when()


class ScoreEntry(SQLModel, table=True):
    """The score ledger: every change with its rule, config version and cause."""

    __tablename__ = "score_entry"
    __table_args__ = (
        # Explicit points per rule are summed for every batch of events: without this a
        # busy lead's thousands of implicit rows would be read each time.
        Index("ix_score_entry_explicit", "lead_id", "rule_id",
              sqlite_where=text("kind = 'explicit'"),
              postgresql_where=text("kind = 'explicit'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    kind: str = Field(max_length=10, description="explicit | implicit")
    rule_id: str = Field(max_length=80)
    config_version: str = Field(max_length=12)
    delta: float
    event_id: int | None = Field(default=None, foreign_key="event.id")
    created_at: datetime = _when()


class MailOutbox(SQLModel, table=True):
    """A mail to send. Rendered and keyed in the transaction that decided it."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    lead_id: int | None = Field(default=None, foreign_key="lead.id", index=True)
    kind: str = Field(max_length=20, description="marketing | transactional")
    category: str = Field(default="nurture", max_length=30,
                          description="doi | doi_reminder | nurture | notification …")
    to_address: str | None = Field(default=None, max_length=320)
    subject: str = Field(max_length=300)
    message_id: str = Field(max_length=255, unique=True)
    # The rendered bodies are in mail_body: this row is rewritten three times on its way
    # out (leased, DATA mark, result), and a row carrying kilobytes of HTML made each of
    # those writes (and each commit) copy them again.
    headers: dict[str, Any] = _json()
    status: str = Field(default="pending", max_length=20,
                        description="pending | sending | sent | retry | failed | unknown | "
                        "suppressed | deferred")
    attempts: int = 0
    next_attempt_at: datetime | None = _when(nullable=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _when(nullable=True)
    last_error: str | None = Field(default=None, max_length=1000)
    # Set just before SMTP DATA: a crash after it leaves the row `unknown`, never resent.
    data_started_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)
    # The arm of the step's A/B test this mail was sent as (None: no test).
    variant: str | None = Field(default=None, max_length=80)


class MailBody(SQLModel, table=True):
    """A mail's rendered HTML and text, written once with its outbox row and read when it
    is sent; gone with the row (erasure), or deleted by retention once the mail ended."""

    __tablename__ = "mail_body"

    message_id: str = Field(
        sa_column=Column(String(255), ForeignKey("mail_outbox.message_id", ondelete="CASCADE"),
                         primary_key=True))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    body_text: str = Field(sa_column=Column(Text, nullable=False))


class Handover(SQLModel, table=True):
    """An MQL handed to sales, and what sales answered."""

    __tablename__ = "handover"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=32, unique=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    reason: str = Field(max_length=20, description="threshold | fast_lane")
    rep_id: str | None = Field(default=None, max_length=80, index=True)
    status: str = Field(default="open", max_length=20, index=True,
                        description="open | accepted | rejected | closed")
    rejection_code: str | None = Field(default=None, max_length=60)
    outcome: str | None = Field(default=None, max_length=20,
                                description="won | lost | no_time | buying_center | "
                                "budget_frozen, once sales closes the lead")
    grade: str | None = Field(default=None, max_length=2)
    channel: str | None = Field(default=None, max_length=10, description="direct | partner")
    routing_rule: str | None = Field(default=None, max_length=80)
    created_at: datetime = _when()
    sla_due_at: datetime | None = _when(nullable=True, index=True)
    answered_at: datetime | None = _when(nullable=True)
    escalated_at: datetime | None = _when(nullable=True)
    breached: bool = False


class WebhookDelivery(SQLModel, table=True):
    """One signed event for one endpoint; ``webhook_id`` stays the same across retries."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "webhook_id", name="uq_webhook_delivery_endpoint_msg"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: str = Field(max_length=64)
    endpoint_id: str = Field(max_length=80)
    event_type: str = Field(max_length=60)
    handover_id: int | None = Field(default=None, foreign_key="handover.id", index=True)
    # The lead an event about the lead itself concerns (lead.unsubscribed, consent.withdrawn):
    # its payload goes with the lead's erasure, as the handovers' do.
    lead_id: int | None = Field(default=None, foreign_key="lead.id", index=True)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=20,
                        description="pending | delivering | delivered | retry | dead | disabled")
    attempts: int = 0
    next_attempt_at: datetime | None = _when(nullable=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _when(nullable=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _when()
    delivered_at: datetime | None = _when(nullable=True)


class WebhookEndpointState(SQLModel, table=True):
    """An endpoint that answered 410 Gone: disabled until an operator enables it again."""

    __tablename__ = "webhook_endpoint_state"

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: str = Field(max_length=80, unique=True)
    disabled_at: datetime = _when()
    reason: str = Field(max_length=200)


class Suppression(SQLModel, table=True):
    """Addresses that must never be mailed, kept only as a hash (survives erasure)."""

    __tablename__ = "suppression"

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the address")
    reason: str = Field(max_length=40, description="unsubscribed | erased | hard_bounce | "
                        "soft_bounces | complaint | manual")
    created_at: datetime = _when()


class SentContent(SQLModel, table=True):
    """Which content a lead has been sent: never the same item twice, across journeys."""

    __tablename__ = "sent_content"
    __table_args__ = (UniqueConstraint("lead_id", "content_id", name="uq_sent_content"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id")
    content_id: str = Field(max_length=80)
    journey_id: str = Field(max_length=80)
    step_id: str = Field(max_length=80)
    sent_at: datetime = _when()


class TrackedLink(SQLModel, table=True):
    """A link in a mail: the click goes to ``url`` looked up here, never taken from the request."""

    __tablename__ = "tracked_link"

    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(max_length=32, unique=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    content_id: str | None = Field(default=None, max_length=80)
    kind: str = Field(max_length=20, description="content | fast_lane_content | open")
    url: str = Field(sa_column=Column(Text, nullable=False))
    outbox_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = _when()


class StageEntry(SQLModel, table=True):
    """A lead entering a journey stage (INF … CUS): the history behind velocity reports."""

    __tablename__ = "stage_entry"
    __table_args__ = (Index("ix_stage_entry_lead", "lead_id", "entered_at"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id")
    journey_id: str = Field(max_length=80)
    stage: str = Field(max_length=3)
    entered_at: datetime = _when()


class SendDeferral(SQLModel, table=True):
    """A journey mail the contact policy held back, why, and until when (reports)."""

    __tablename__ = "send_deferral"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    journey_id: str = Field(max_length=80)
    step_id: str = Field(max_length=80)
    reason: str = Field(max_length=20, description="business_days | holiday | quiet_hours | "
                        "frequency_cap | paused")
    deferred_at: datetime = _when(index=True)
    until: datetime = _when()


class JourneyVersion(SQLModel, table=True):
    """Every journey version that went live, so leads pinned to it can finish it."""

    __tablename__ = "journey_version"
    __table_args__ = (UniqueConstraint("journey_id", "version", name="uq_journey_version"),)

    id: int | None = Field(default=None, primary_key=True)
    journey_id: str = Field(max_length=80)
    version: str = Field(max_length=12)
    definition: dict[str, Any] = _json()
    live_since: datetime = _when()


class SignupAttempt(SQLModel, table=True):
    """Sign-up attempts, kept a short while for per-address and per-IP limits."""

    __tablename__ = "signup_attempt"

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64, index=True)
    ip: str | None = Field(default=None, max_length=45, index=True)
    at: datetime = _when(index=True)
    refused: str | None = Field(default=None, max_length=200,
                                description="why the address was refused (invalid …)")


class JourneyPause(SQLModel, table=True):
    """A journey an operator paused (``ripen journeys pause``): its steps do not run until
    it is resumed; the YAML stays as it is."""

    __tablename__ = "journey_pause"

    id: int | None = Field(default=None, primary_key=True)
    journey_id: str = Field(max_length=80, unique=True)
    paused_at: datetime = _when()
    note: str | None = Field(default=None, max_length=200)


class RunRecord(SQLModel, table=True):
    """A tick or maintenance run: when it ran, how it ended and what it did (what /health
    and the metrics read in every mode, also where the runs happen on Prefect workers)."""

    __tablename__ = "run_record"
    __table_args__ = (Index("ix_run_record_kind_started", "kind", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, description="tick | maintenance")
    started_at: datetime = _when()
    finished_at: datetime | None = _when(nullable=True)
    status: str = Field(max_length=20, description="running | ok | failed")
    summary: dict[str, Any] = _json()
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class KeptReport(SQLModel, table=True):
    """A report computed ahead (the funnel, by the maintenance run) so that a page reads it
    instead of counting 100k leads per request. Aggregates only: no person in it."""

    __tablename__ = "kept_report"

    name: str = Field(primary_key=True, max_length=40, description="funnel")
    period_start: datetime = _when()
    period_end: datetime = _when()
    computed_at: datetime = _when()
    seconds: float = Field(description="how long computing it took")
    data: dict[str, Any] = _json()


class SignInFailure(SQLModel, table=True):
    """A failed workbench sign-in from an address, kept for the lockout window only: every
    API process reads the same failures, so more processes do not mean more guesses."""

    __tablename__ = "sign_in_failure"

    id: int | None = Field(default=None, primary_key=True)
    ip: str = Field(max_length=45, index=True)
    at: datetime = _when(index=True)


#: Every table, for migrations and for the "address appears nowhere" scan of GDPR erasure.
TABLES = (Account, Lead, ConsentRecord, Enrollment, Event, ScoreEntry, MailOutbox, MailBody,
          Handover, WebhookDelivery, Suppression, SignupAttempt, SentContent, TrackedLink,
          JourneyVersion, WebhookEndpointState, StageEntry, SendDeferral, RunRecord,
          JourneyPause, KeptReport, SignInFailure)
