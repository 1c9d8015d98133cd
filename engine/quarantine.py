"""Quarantine: a lead whose step could not be done (its mail did not render, a filter failed
on its values) stops at that step with the reason, while the rest of its batch goes on.

An operator lists them (``ripen leads quarantined``), fixes the template or the data, and
retries them (``ripen leads retry``): they are due again at the same step, and the next tick
does it once — the outbox's key (lead, journey version, step) keeps a retried mail from
going out twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.addresses import normalise_email
from engine.errors import RipenError
from engine.store.uow import UowFactory


@dataclass(frozen=True)
class Quarantined:
    enrollment_id: int
    email: str | None
    journey: str
    version: str
    stage: str
    step: str
    since: datetime | None
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"enrollment": self.enrollment_id, "email": self.email,
                "journey": self.journey, "version": self.version, "stage": self.stage,
                "step": self.step, "since": self.since.isoformat() if self.since else None,
                "reason": self.reason}


def listed(uow_factory: UowFactory, *, journey: str | None = None,
           emails: Sequence[str] = ()) -> list[Quarantined]:
    """The quarantined leads, oldest first (of one journey, or some addresses)."""
    addresses = [normalise_email(e) for e in emails]
    with uow_factory() as uow:
        return [Quarantined(e.id or 0, email, e.journey_id, e.journey_version, e.stage,
                            e.step_id, e.quarantined_at, e.quarantine_reason or "")
                for e, email in uow.quarantined(journey_id=journey, emails=addresses)]


def retry(uow_factory: UowFactory, *, now: datetime, journey: str | None = None,
          emails: Sequence[str] = ()) -> list[Quarantined]:
    """Make the quarantined leads (all, of one journey, or some addresses) due again at
    their step; the next tick does it. Returns what was released."""
    addresses = [normalise_email(e) for e in emails]
    with uow_factory() as uow:
        rows = uow.quarantined(journey_id=journey, emails=addresses)
        if emails and not rows:
            raise RipenError("none of these addresses is quarantined")
        released = []
        for enrollment, email in rows:
            released.append(Quarantined(
                enrollment.id or 0, email, enrollment.journey_id, enrollment.journey_version,
                enrollment.stage, enrollment.step_id, enrollment.quarantined_at,
                enrollment.quarantine_reason or ""))
            enrollment.status = "active"
            enrollment.due_at = now
            enrollment.quarantined_at = None
            enrollment.quarantine_reason = None
            uow.add(enrollment)
        uow.commit()
        return released


def counts(uow_factory: UowFactory) -> dict[str, int]:
    """Quarantined leads per journey (for /health, the tick and the metrics)."""
    with uow_factory() as uow:
        return uow.quarantined_counts()


__all__ = ["Quarantined", "counts", "listed", "retry"]
