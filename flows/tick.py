"""The tick flow the scheduler runs every few seconds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from prefect import flow, task
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from engine.store.database import session
from engine.store.enrollments import due_steps
from flows import runtime


@task(name="due-steps")
def find_due_steps(now: datetime) -> list[dict[str, object]]:
    """One query over all due enrollments (a batch), never one task per lead."""
    with session(runtime.current().db) as db:
        return [
            {"journey": d.journey_id, "version": d.journey_version, "step": d.step_id,
             "due": d.count}
            for d in due_steps(db, now=now)
        ]


@flow(name="ripen-tick", log_prints=False)
def tick_flow(now: datetime | None = None) -> list[dict[str, object]]:
    """Find what is due at ``now`` (default: the runtime's clock); later issues act on it."""
    return find_due_steps(now or runtime.current().clock())


@contextmanager
def no_heartbeats() -> Iterator[None]:
    """Flow heartbeats cost ~1 s at every flow exit; frequent ticks switch them off."""
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def run_tick(now: datetime | None = None) -> list[dict[str, object]]:
    """One tick, as the scheduler and ``ripen tick`` run it."""
    with no_heartbeats():
        return tick_flow(now)
