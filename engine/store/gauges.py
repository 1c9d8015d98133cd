"""What the operators' metrics read: a few grouped counts over the hot tables, each one
statement, no row loaded (``/metrics`` is scraped every 15–60 s)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from engine.store.tables import Enrollment, Lead, MailOutbox, WebhookDelivery
from engine.store.types import UtcDateTime

WAITING = ("pending", "retry")


def leads_by_status_and_stage(db: Session) -> dict[tuple[str, str], int]:
    rows = db.exec(select(Lead.status, Lead.funnel_stage, func.count())
                   .group_by(Lead.status, Lead.funnel_stage)).all()
    return {(status, stage): int(n) for status, stage, n in rows}


def enrollments_by_status(db: Session) -> dict[str, int]:
    rows = db.exec(select(Enrollment.status, func.count()).group_by(Enrollment.status)).all()
    return {status: int(n) for status, n in rows}


def enrollments_due(db: Session, now: datetime) -> int:
    """Active enrollments due at ``now`` (through the due-step index)."""
    return int(db.exec(select(func.count()).select_from(Enrollment).where(
        col(Enrollment.status) == "active", col(Enrollment.due_at) <= now)).one())


def outbox_by_status(db: Session) -> dict[str, int]:
    rows = db.exec(select(MailOutbox.status, func.count()).group_by(MailOutbox.status)).all()
    return {status: int(n) for status, n in rows}


def oldest_waiting_mail(db: Session) -> datetime | None:
    """When the oldest mail still waiting to go out (pending, retry) was written."""
    oldest = func.min(col(MailOutbox.created_at), type_=UtcDateTime())
    return db.exec(select(oldest).where(col(MailOutbox.status).in_(WAITING))).one()


def webhooks_by_status(db: Session) -> dict[str, int]:
    rows = db.exec(select(WebhookDelivery.status, func.count())
                   .group_by(WebhookDelivery.status)).all()
    return {status: int(n) for status, n in rows}
