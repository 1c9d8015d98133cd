"""Enrollment queries: what one scheduler tick looks at.

``due_steps`` counts what is due per journey and step through the ``ix_enrollment_due``
index. A send step then claims its due enrollments and reads its recipients as plain
values (``DueEnrollment``, ``Recipient``): only the columns sending needs, no ORM objects,
written back in one statement (``bulk.update``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func
from sqlalchemy import select as columns
from sqlmodel import Session, col, select

from engine.store import bulk
from engine.store.bulk import in_chunks
from engine.store.tables import Account, Enrollment, Lead


@dataclass(frozen=True)
class DueStep:
    journey_id: str
    journey_version: str
    step_id: str
    count: int


def due_steps(db: Session, *, now: datetime) -> list[DueStep]:
    """Active enrollments due at ``now``, counted per journey version and step."""
    query = (
        select(Enrollment.journey_id, Enrollment.journey_version, Enrollment.step_id,
               func.count())
        .where(Enrollment.status == "active", Enrollment.due_at <= now)  # type: ignore[operator]
        .group_by(Enrollment.journey_id, Enrollment.journey_version, Enrollment.step_id)
        .order_by(Enrollment.journey_id, Enrollment.step_id)
    )
    return [DueStep(j, v, s, int(n)) for j, v, s, n in db.exec(query).all()]


#: Enrollments a lead is still in: running, paused while sales has it, or quarantined until
#: an operator retries (nobody re-enters the journey past these, and a withdrawal ends them).
IN_JOURNEY = ("active", "paused", "quarantined")


@dataclass(slots=True)
class DueEnrollment:
    """The part of an enrollment a send step reads and moves."""

    id: int
    lead_id: int
    step_id: str
    step_entered_at: datetime | None
    due_at: datetime | None
    status: str
    exit_reason: str | None
    ended_at: datetime | None
    quarantine_reason: str | None = None  # set when the step failed for this lead

    def changes(self) -> dict[str, object]:
        """The row for ``bulk.update``: every column a step may have moved."""
        return {"id": self.id, "step_id": self.step_id, "step_entered_at": self.step_entered_at,
                "due_at": self.due_at, "status": self.status, "exit_reason": self.exit_reason,
                "ended_at": self.ended_at}


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a journey mail needs about its lead."""

    id: int
    status: str
    email: str | None
    public_id: str
    first_name: str | None
    last_name: str | None
    job_title: str | None
    language: str
    persona_id: str | None
    account_id: int | None
    tracking_consent: bool
    time_zone: str | None
    mail_paused_until: datetime | None


_PLACE: tuple[Any, ...] = (
    Enrollment.id, Enrollment.lead_id, Enrollment.step_id, Enrollment.step_entered_at,
    Enrollment.due_at, Enrollment.status, Enrollment.exit_reason, Enrollment.ended_at)
_RECIPIENT: tuple[Any, ...] = (
    Lead.id, Lead.status, Lead.email, Lead.public_id, Lead.first_name, Lead.last_name,
    Lead.job_title, Lead.language, Lead.persona_id, Lead.account_id, Lead.tracking_consent,
    Lead.time_zone, Lead.mail_paused_until)


Query = TypeVar("Query", bound=Select[Any])


def due_at_step(db: Session, query: Query, *, journey_id: str, version: str, step_id: str,
                now: datetime, limit: int) -> Query:
    """``query`` narrowed to the due enrollments at one step, oldest first, locked for the
    transaction (SKIP LOCKED on PostgreSQL: two ticks never take the same enrollment)."""
    query = (query.where(col(Enrollment.journey_id) == journey_id,
                         col(Enrollment.journey_version) == version,
                         col(Enrollment.step_id) == step_id,
                         col(Enrollment.status) == "active",
                         col(Enrollment.due_at) <= now)
             .order_by(col(Enrollment.due_at), col(Enrollment.id)).limit(limit))
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query


def claim_due(db: Session, *, journey_id: str, version: str, step_id: str, now: datetime,
              limit: int) -> list[DueEnrollment]:
    """Due enrollments at one step as plain values (see ``due_at_step``)."""
    query = due_at_step(db, columns(*_PLACE), journey_id=journey_id, version=version,
                        step_id=step_id, now=now, limit=limit)
    return [DueEnrollment(*row) for row in db.execute(query).all()]


def recipients(db: Session, lead_ids: Iterable[int]) -> dict[int, Recipient]:
    found: dict[int, Recipient] = {}
    for chunk in in_chunks(lead_ids):
        query = columns(*_RECIPIENT).where(bulk.among(db, col(Lead.id), chunk))
        for row in db.execute(query).all():
            found[row[0]] = Recipient(*row)
    return found


def account_names(db: Session, account_ids: Iterable[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in in_chunks(account_ids):
        found.update({account_id: name for account_id, name in db.exec(
            select(Account.id, Account.name).where(bulk.among(db, col(Account.id), chunk))).all()
            if account_id is not None})
    return found
