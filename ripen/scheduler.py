"""The embedded scheduler: one coarse tick job, never a job per lead.

Due-ness lives in our own indexed columns; APScheduler only says "tick now". A tick that
overruns is not started twice (``max_instances=1``) and missed ticks collapse into one
(``coalesce``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler

from engine.clock import Clock
from ripen.api.app import SchedulerStatus

log = logging.getLogger("ripen.scheduler")


class _QuietSkips(logging.Filter):
    """A tick still running when the next is due is normal (coalesce); don't warn about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_QuietSkips())


class TickScheduler:
    def __init__(self, *, tick: Callable[[], list[dict[str, object]]], every_seconds: int,
                 clock: Clock, status: SchedulerStatus,
                 maintenance: Callable[[], object] | None = None,
                 maintenance_seconds: int = 900) -> None:
        self._tick = tick
        self._clock = clock
        self.status = status
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self._run, "interval", seconds=every_seconds, id="tick", max_instances=1,
            coalesce=True, misfire_grace_time=every_seconds, next_run_time=self._clock(),
        )
        if maintenance is not None:
            self._maintenance = maintenance
            self._scheduler.add_job(
                self._run_maintenance, "interval", seconds=maintenance_seconds,
                id="maintenance", max_instances=1, coalesce=True,
                misfire_grace_time=maintenance_seconds)

    def _run_maintenance(self) -> None:
        try:
            self._maintenance()
        except Exception:  # the next run tries again
            log.error("maintenance failed:\n%s", traceback.format_exc())

    def _run(self) -> None:
        started: datetime = self._clock()
        try:
            self.status.due = self._tick()
            self.status.last_tick_error = None
        except Exception as exc:  # a failed tick must not stop the next one
            self.status.last_tick_error = f"{type(exc).__name__}: {exc}"
            log.error("tick failed:\n%s", traceback.format_exc())
        finally:
            self.status.last_tick_at = started

    def start(self) -> None:
        self._scheduler.start()
        self.status.running = True

    def shutdown(self) -> None:
        self.status.running = False
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
