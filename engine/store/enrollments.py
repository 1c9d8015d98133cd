"""Enrollment queries: what one scheduler tick looks at.

The journey runtime (send, wait, branch …) builds on this; today a tick reports what is
due per journey and step, read through the ``ix_enrollment_due`` index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from engine.store.tables import Enrollment


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
