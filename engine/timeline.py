"""A lead's timeline: one person's whole story in ripen, in the order it happened.

Who the lead is (persona, fit, grade, consent), every journey it is or was in (stage, step,
status, quarantine), and one chronological list of what happened: consent given and
withdrawn, stages entered, each mail (sent, opened, clicked — by the mail's own tracked
links), events, score lines with their rule, sends the contact policy deferred, handovers and
sales' answers. It reads; it changes nothing. ``ripen lead show`` prints it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.addresses import normalise_email
from engine.errors import RipenError
from engine.store.engagement import engaged_link
from engine.store.tables import (
    Account,
    ConsentRecord,
    Enrollment,
    Event,
    Handover,
    MailOutbox,
    SendDeferral,
    StageEntry,
    TrackedLink,
)
from engine.store.uow import UnitOfWork, UowFactory


class UnknownLead(RipenError):
    pass


@dataclass(frozen=True)
class Moment:
    """One thing that happened to the lead."""

    at: datetime
    kind: str        # consent | stage | mail | event | score | deferred | handover | journey
    what: str
    detail: str = ""


@dataclass(frozen=True)
class JourneyPart:
    """The lead in one journey (version): where it is or was, and how it ended."""

    journey: str
    version: str
    stage: str
    step: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    due_at: datetime | None
    quarantine_reason: str | None
    exit_reason: str | None = None


@dataclass(frozen=True)
class MailSent:
    subject: str
    category: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    opened: bool
    clicked: bool


@dataclass(frozen=True)
class Timeline:
    email: str | None
    name: str
    company: str | None
    job_title: str | None
    persona: str | None
    status: str
    stage: str
    sales_stage: str | None
    grade: str
    explicit_points: float
    implicit_points: float
    is_mql: bool
    consent_version: str | None
    tracking_consent: bool
    phone_consent: bool
    journeys: list[JourneyPart]
    mails: list[MailSent]
    moments: list[Moment] = field(default_factory=list)


def _mail_clicks(uow: UnitOfWork, lead_id: int, events: list[Event]
                 ) -> tuple[dict[str, set[str]], set[str], set[str]]:
    """Each mail's link tokens, and the tokens opened and clicked (scanners left out)."""
    tokens: dict[str, set[str]] = defaultdict(set)
    for link in uow.rows_of_lead(TrackedLink, lead_id):
        if link.outbox_key:
            tokens[link.outbox_key].add(link.token_id)
    opened: set[str] = set()
    clicked: set[str] = set()
    for e in events:
        token = engaged_link(e.type, e.idempotency_key, e.data, e.is_scanner)
        if token is not None:
            (opened if e.type == "open" else clicked).add(token)
    return tokens, opened, clicked


def timeline(uow_factory: UowFactory, email: str, explain: Any) -> Timeline:
    """The lead's timeline. ``explain`` is ``Handovers.explain`` (score, grade, MQL)."""
    address = normalise_email(email)
    found = explain(address)
    if found is None:
        raise UnknownLead(f"no lead with the address {address}")
    with uow_factory() as uow:
        return _timeline(uow, address, found)


def _timeline(uow: UnitOfWork, address: str, found: Any) -> Timeline:
    lead = uow.lead_by_email(address)
    if lead is None or lead.id is None:
        raise UnknownLead(f"no lead with the address {address}")
    score = found.score
    account = uow.session.get(Account, lead.account_id) if lead.account_id else None
    events = sorted(uow.rows_of_lead(Event, lead.id), key=lambda e: e.occurred_at)
    tokens, opened, clicked = _mail_clicks(uow, lead.id, events)
    moments: list[Moment] = []

    for record in uow.rows_of_lead(ConsentRecord, lead.id):
        detail = ", ".join(filter(None, (
            record.method, record.source, record.form,
            f"text {record.text_version}" if record.text_version else None)))
        moments.append(Moment(record.occurred_at, "consent",
                              f"{record.purpose} {record.action}", detail))
    for entry in uow.rows_of_lead(StageEntry, lead.id):
        moments.append(Moment(entry.entered_at, "stage", f"entered {entry.stage}",
                              entry.journey_id))
    mails: list[MailSent] = []
    for mail in sorted(uow.rows_of_lead(MailOutbox, lead.id), key=lambda m: m.created_at):
        own = tokens.get(mail.idempotency_key, set())
        sent = MailSent(mail.subject, mail.category, mail.status, mail.created_at,
                        mail.sent_at, opened=bool(own & opened), clicked=bool(own & clicked))
        mails.append(sent)
        marks = ", ".join(filter(None, ("opened" if sent.opened else None,
                                        "clicked" if sent.clicked else None)))
        to = "" if mail.to_address == lead.email else f" to {mail.to_address}"
        moments.append(Moment(mail.sent_at or mail.created_at, "mail",
                              f"{mail.category}{to}: {mail.subject}",
                              mail.status + (f"; {marks}" if marks else "")))
    for event in events:
        if event.type == "open":
            continue  # shown on its mail
        what = event.type + (f" {event.content_id}" if event.content_id else "")
        moments.append(Moment(event.occurred_at, "event", what,
                              "by a mail scanner (not counted)" if event.is_scanner
                              else event.source or ""))
    for line in score.lines:
        moments.append(Moment(line.at, "score", f"{line.kind} {line.rule_id}",
                              f"{line.delta:+.1f} then, {line.points:+.1f} now"))
    for deferral in uow.rows_of_lead(SendDeferral, lead.id):
        moments.append(Moment(deferral.deferred_at, "deferred",
                              f"{deferral.journey_id} {deferral.step_id}",
                              f"{deferral.reason} until {deferral.until:%Y-%m-%d %H:%M}"))
    handovers: list[Handover] = list(found.handovers)
    for handover in handovers:
        moments.append(Moment(handover.created_at, "handover",
                              f"handed to {handover.rep_id or 'sales'}",
                              f"{handover.reason}, grade {handover.grade or '-'}"))
        if handover.answered_at is not None:
            answer = handover.status + (f" ({handover.rejection_code})"
                                        if handover.rejection_code else "")
            moments.append(Moment(handover.answered_at, "handover", f"sales {answer}",
                                  handover.outcome or ""))
    parts: list[JourneyPart] = []
    for enrollment in sorted(uow.rows_of_lead(Enrollment, lead.id),
                             key=lambda e: e.started_at):
        parts.append(JourneyPart(enrollment.journey_id, enrollment.journey_version,
                                 enrollment.stage, enrollment.step_id, enrollment.status,
                                 enrollment.started_at, enrollment.ended_at,
                                 enrollment.due_at, enrollment.quarantine_reason,
                                 enrollment.exit_reason))
        moments.append(Moment(enrollment.started_at, "journey",
                              f"joined {enrollment.journey_id}", enrollment.journey_version))
        if enrollment.quarantined_at is not None:
            moments.append(Moment(enrollment.quarantined_at, "journey",
                                  f"quarantined in {enrollment.journey_id} at "
                                  f"{enrollment.step_id}", enrollment.quarantine_reason or ""))
        if enrollment.ended_at is not None:
            moments.append(Moment(enrollment.ended_at, "journey",
                                  f"left {enrollment.journey_id}",
                                  f"{enrollment.status}: {enrollment.exit_reason}"
                                  if enrollment.exit_reason else enrollment.status))
    moments.sort(key=lambda m: m.at)
    return Timeline(
        email=lead.email,
        name=" ".join(filter(None, (lead.first_name, lead.last_name))) or "",
        company=account.name if account else None, job_title=lead.job_title,
        persona=lead.persona_id, status=lead.status, stage=lead.funnel_stage,
        sales_stage=lead.sales_stage, grade=score.grade, explicit_points=score.explicit,
        implicit_points=score.implicit, is_mql=found.is_mql,
        consent_version=lead.consent_version, tracking_consent=lead.tracking_consent,
        phone_consent=lead.phone_consent, journeys=parts, mails=mails, moments=moments)
