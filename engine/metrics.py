"""What an operator watches, as one snapshot (``/metrics`` renders it for Prometheus): leads
by status and stage, enrollments by status and due now, the outbox by status and the age of
its oldest waiting mail, webhook deliveries by status, quarantined leads per journey, and
the last tick and maintenance runs (ripen's own record: the same in every mode)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine import runs
from engine.runs import LastRun
from engine.store import gauges
from engine.store.uow import UowFactory


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    leads: dict[tuple[str, str], int]
    enrollments: dict[str, int]
    due: int
    outbox: dict[str, int]
    oldest_waiting_mail: datetime | None
    webhooks: dict[str, int]
    quarantined: dict[str, int]
    runs: dict[str, LastRun] = field(default_factory=dict)  # kind → the newest run


def snapshot(uow_factory: UowFactory, now: datetime) -> Snapshot:
    with uow_factory() as uow:
        db = uow.session
        found = Snapshot(at=now, leads=gauges.leads_by_status_and_stage(db),
                         enrollments=gauges.enrollments_by_status(db),
                         due=gauges.enrollments_due(db, now),
                         outbox=gauges.outbox_by_status(db),
                         oldest_waiting_mail=gauges.oldest_waiting_mail(db),
                         webhooks=gauges.webhooks_by_status(db),
                         quarantined=uow.quarantined_counts())
    for kind in ("tick", "maintenance"):
        last = runs.last(uow_factory, kind)
        if last is not None:
            found.runs[kind] = last
    return found


__all__ = ["Snapshot", "snapshot"]
