"""The record of tick and maintenance runs: when each started and ended, how, and what it
did. ``/health`` and the metrics read it in every mode — also when the runs happen on
Prefect workers in other processes — and a run killed halfway stays ``running``. Old
records go with ``retention.run_records``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.store.tables import RunRecord
from engine.store.uow import UowFactory


@dataclass(frozen=True)
class LastRun:
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    summary: dict[str, Any]
    error: str | None


def started(uow_factory: UowFactory, kind: str, at: datetime) -> int:
    with uow_factory() as uow:
        record = RunRecord(kind=kind, started_at=at, status="running", summary={})
        uow.add(record)
        uow.commit()
        assert record.id is not None
        return record.id


def finished(uow_factory: UowFactory, run_id: int, at: datetime, *, status: str,
             summary: dict[str, Any], error: str | None = None) -> None:
    with uow_factory() as uow:
        record = uow.session.get(RunRecord, run_id)
        if record is None:  # pragma: no cover - deleted meanwhile (30 days later)
            return
        record.finished_at, record.status = at, status
        record.summary, record.error = summary, error[:4000] if error else None
        uow.add(record)
        uow.commit()


def last(uow_factory: UowFactory, kind: str, *, finished: bool = False) -> LastRun | None:
    with uow_factory() as uow:
        record = uow.last_run(kind, finished=finished)
        if record is None:
            return None
        return LastRun(record.kind, record.started_at, record.finished_at, record.status,
                       dict(record.summary), record.error)


__all__ = ["LastRun", "finished", "last", "started"]
