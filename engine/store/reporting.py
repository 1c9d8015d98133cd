"""The reads behind the funnel report (engine/report.py): one query per kind of fact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from engine.store.tables import Event, Handover, Lead, SentContent
from engine.store.uow import in_chunks


def leads_created(session: Session, start: datetime, end: datetime) -> Sequence[Lead]:
    return session.exec(select(Lead).where(col(Lead.created_at) >= start,
                                           col(Lead.created_at) < end,
                                           col(Lead.status) != "erased")).all()


def handovers_of(session: Session, lead_ids: list[int]) -> dict[int, list[Handover]]:
    found: dict[int, list[Handover]] = {}
    for chunk in in_chunks(lead_ids):
        for handover in session.exec(select(Handover).where(
                col(Handover.lead_id).in_(chunk))).all():
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


def sends_by_content(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    return {content_id: int(count) for content_id, count in session.exec(
        select(SentContent.content_id, func.count()).where(
            col(SentContent.sent_at) >= start, col(SentContent.sent_at) < end)
        .group_by(col(SentContent.content_id))).all()}


def engagement_by_content(session: Session, start: datetime,
                          end: datetime) -> list[tuple[str, str, int]]:
    """(content, click|download, count), scanner clicks left out."""
    return [(content_id or "", kind, int(count)) for content_id, kind, count in session.exec(
        select(Event.content_id, Event.type, func.count()).where(
            col(Event.occurred_at) >= start, col(Event.occurred_at) < end,
            col(Event.is_scanner).is_(False), col(Event.content_id).is_not(None),
            col(Event.type).in_(("click", "download")))
        .group_by(col(Event.content_id), col(Event.type))).all()]
