"""The reads behind the funnel report (engine/report.py): one query per kind of fact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as columns
from sqlmodel import Session, col, select

from engine.store import bulk
from engine.store.bulk import in_chunks
from engine.store.tables import (
    ConsentRecord,
    Enrollment,
    Event,
    Handover,
    KeptReport,
    Lead,
    MailOutbox,
    SendDeferral,
    SentContent,
    SignupAttempt,
    StageEntry,
)

#: The lead's columns the funnel report reads: plain rows, not ORM objects (100k leads as
#: objects took over half the report's time).
REPORTED = (Lead.id, Lead.mql_at, Lead.persona_id, Lead.source, Lead.campaign, Lead.status,
            Lead.account_id, Lead.job_title)


def leads_created(session: Session, start: datetime, end: datetime) -> Sequence[Any]:
    """Rows with the ``REPORTED`` columns (by name: ``row.mql_at``) of the leads created in
    the period, erased ones left out."""
    return session.execute(columns(*(col(c) for c in REPORTED)).where(
        col(Lead.created_at) >= start, col(Lead.created_at) < end,
        col(Lead.status) != "erased")).all()


def handovers_of(session: Session, lead_ids: list[int]) -> dict[int, list[Handover]]:
    found: dict[int, list[Handover]] = {}
    for chunk in in_chunks(lead_ids):
        for handover in session.exec(select(Handover).where(
                bulk.among(session, col(Handover.lead_id), chunk))).all():
            found.setdefault(handover.lead_id, []).append(handover)
    return found


def handovers_made(session: Session, start: datetime, end: datetime) -> Sequence[Handover]:
    return session.exec(select(Handover).where(col(Handover.created_at) >= start,
                                               col(Handover.created_at) < end)).all()


def recycled(session: Session, start: datetime, end: datetime) -> list[tuple[Lead, bool]]:
    """Leads sent back to nurturing in the period, and whether they were handed over again."""
    found = []
    for lead in session.exec(select(Lead).where(col(Lead.recycled_at) >= start,
                                                col(Lead.recycled_at) < end)).all():
        later = session.exec(select(func.count()).select_from(Handover).where(
            col(Handover.lead_id) == lead.id,
            col(Handover.created_at) > lead.recycled_at)).one()
        found.append((lead, int(later) > 0))
    return found


def engagement_by_content(session: Session, start: datetime,
                          end: datetime) -> list[tuple[str, str, int]]:
    """(content, click|download, count), scanner clicks left out."""
    return [(content_id or "", kind, int(count)) for content_id, kind, count in session.exec(
        select(Event.content_id, Event.type, func.count()).where(
            col(Event.occurred_at) >= start, col(Event.occurred_at) < end,
            col(Event.is_scanner).is_(False), col(Event.content_id).is_not(None),
            col(Event.type).in_(("click", "download")))
        .group_by(col(Event.content_id), col(Event.type))).all()]


def stage_entries_of(session: Session, lead_ids: list[int]) -> dict[int, list[StageEntry]]:
    """Each lead's stage entries, oldest first."""
    found: dict[int, list[StageEntry]] = {}
    for chunk in in_chunks(lead_ids):
        for entry in session.exec(select(StageEntry).where(
                bulk.among(session, col(StageEntry.lead_id), chunk)).order_by(
                col(StageEntry.lead_id), col(StageEntry.entered_at), col(StageEntry.id))).all():
            found.setdefault(entry.lead_id, []).append(entry)
    return found


def stage_entries(session: Session, start: datetime, end: datetime) -> Sequence[StageEntry]:
    return session.exec(select(StageEntry).where(col(StageEntry.entered_at) >= start,
                                                 col(StageEntry.entered_at) < end)).all()


def engagements(session: Session, start: datetime,
                end: datetime) -> list[tuple[int, str, datetime]]:
    """(lead, content, recorded at) of the clicks and downloads recorded in the period."""
    return [(lead_id, content_id or "", recorded_at) for lead_id, content_id, recorded_at in
            session.exec(select(Event.lead_id, Event.content_id, Event.recorded_at).where(
                col(Event.recorded_at) >= start, col(Event.recorded_at) < end,
                col(Event.is_scanner).is_(False), col(Event.content_id).is_not(None),
                col(Event.type).in_(("click", "download")))).all()]


def sends(session: Session, start: datetime, end: datetime) -> Sequence[SentContent]:
    return session.exec(select(SentContent).where(col(SentContent.sent_at) >= start,
                                                  col(SentContent.sent_at) < end)).all()


def sent_content_of(session: Session, lead_ids: list[int]) -> dict[int, list[SentContent]]:
    """Each lead's journey mails, oldest first."""
    found: dict[int, list[SentContent]] = {}
    for chunk in in_chunks(lead_ids):
        for row in session.exec(select(SentContent).where(
                bulk.among(session, col(SentContent.lead_id), chunk)).order_by(
                col(SentContent.sent_at), col(SentContent.id))).all():
            found.setdefault(row.lead_id, []).append(row)
    return found


def unsubscribes(session: Session, start: datetime, end: datetime) -> list[tuple[int, datetime]]:
    """(lead, when) of every withdrawal of e-mail consent in the period."""
    return [(lead_id, at) for lead_id, at in session.exec(
        select(ConsentRecord.lead_id, ConsentRecord.occurred_at).where(
            col(ConsentRecord.action) == "withdrawn",
            col(ConsentRecord.purpose) == "email_marketing",
            col(ConsentRecord.occurred_at) >= start, col(ConsentRecord.occurred_at) < end)).all()
            if lead_id is not None]


def bounced_mails(session: Session, start: datetime, end: datetime) -> list[str]:
    """The outbox keys of journey mails that bounced in the period: refused by the relay
    (5xx at submission) or reported later (delivery-status reports, complaints)."""
    keys = [key for key in session.exec(select(MailOutbox.idempotency_key).where(
        col(MailOutbox.status) == "failed", col(MailOutbox.category) == "nurture",
        col(MailOutbox.created_at) >= start, col(MailOutbox.created_at) < end)).all()]
    for data in session.exec(select(Event.data).where(
            col(Event.type).in_(("bounce_hard", "bounce_soft", "complaint")),
            col(Event.occurred_at) >= start, col(Event.occurred_at) < end)).all():
        key = (data or {}).get("journey")
        if isinstance(key, str) and key.startswith("journey:"):
            keys.append(key)
    return keys


def deferrals(session: Session, start: datetime,
              end: datetime) -> list[tuple[str, str, int]]:
    """(journey, reason, count) of journey mails the contact policy held back."""
    return [(journey, reason, int(count)) for journey, reason, count in session.exec(
        select(SendDeferral.journey_id, SendDeferral.reason, func.count()).where(
            col(SendDeferral.deferred_at) >= start, col(SendDeferral.deferred_at) < end)
        .group_by(col(SendDeferral.journey_id), col(SendDeferral.reason))).all()]


def suppressed_sends(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Mails stopped right before sending, by reason (suppressed address, no consent …)."""
    return {reason or "suppressed": int(count) for reason, count in session.exec(
        select(MailOutbox.last_error, func.count()).where(
            col(MailOutbox.status) == "suppressed",
            col(MailOutbox.created_at) >= start, col(MailOutbox.created_at) < end)
        .group_by(col(MailOutbox.last_error))).all()}


def refused_signups(session: Session, start: datetime, end: datetime) -> int:
    return int(session.exec(select(func.count()).select_from(SignupAttempt).where(
        col(SignupAttempt.refused).is_not(None), col(SignupAttempt.at) >= start,
        col(SignupAttempt.at) < end)).one())


def merged_signups(session: Session, start: datetime, end: datetime) -> int:
    return int(session.exec(select(func.count()).select_from(Event).where(
        col(Event.type) == "signup_merged", col(Event.occurred_at) >= start,
        col(Event.occurred_at) < end)).one())


def first_handovers(session: Session) -> dict[int, datetime]:
    """Each lead's first handover to sales (fast lane or MQL)."""
    found: dict[int, datetime] = {}
    for lead_id, created_at in session.exec(select(Handover.lead_id, Handover.created_at)
                                            .order_by(col(Handover.created_at))).all():
        found.setdefault(lead_id, created_at)
    return found


def leads_exited(session: Session, reason: str) -> set[int]:
    """Leads with an enrollment that ended for ``reason`` (e.g. slowest_case)."""
    return set(session.exec(select(Enrollment.lead_id).where(
        col(Enrollment.exit_reason) == reason)).all())


def deferrals_by_lead(session: Session) -> dict[int, int]:
    return {lead_id: int(count) for lead_id, count in session.exec(
        select(SendDeferral.lead_id, func.count()).group_by(col(SendDeferral.lead_id))).all()}


def lead_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Lead)).one())


def sales_stages_of(session: Session, lead_ids: list[int]) -> dict[int, set[str]]:
    """The sales stages (SFC … ABS) each lead has been moved through."""
    found: dict[int, set[str]] = {}
    for chunk in in_chunks(lead_ids):
        for lead_id, data in session.exec(select(Event.lead_id, Event.data).where(
                col(Event.type) == "sales_stage",
                bulk.among(session, col(Event.lead_id), chunk))).all():
            stage = (data or {}).get("stage")
            if isinstance(stage, str):
                found.setdefault(lead_id, set()).add(stage)
    return found


def kept(session: Session, name: str) -> KeptReport | None:
    return session.get(KeptReport, name)


def keep(session: Session, name: str, *, start: datetime, end: datetime, computed_at: datetime,
         seconds: float, data: dict[str, Any]) -> None:
    """Replace the kept report ``name``."""
    row = session.get(KeptReport, name) or KeptReport(
        name=name, period_start=start, period_end=end, computed_at=computed_at,
        seconds=seconds, data=data)
    row.period_start, row.period_end, row.computed_at = start, end, computed_at
    row.seconds, row.data = seconds, data
    session.add(row)
