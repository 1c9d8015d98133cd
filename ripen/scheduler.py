"""The embedded scheduler: one coarse tick job, never a job per lead.

Due-ness lives in our own indexed columns; APScheduler only says "tick now". A tick that
overruns is not started twice (``max_instances=1``) and missed ticks collapse into one
(``coalesce``). A failed tick or maintenance run is one line on the console (its traceback goes
to the error log) and the next run tries again.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from engine.clock import Clock
from ripen import errorlog
from ripen.api.app import SchedulerStatus

log = logging.getLogger("ripen.scheduler")


class _QuietSkips(logging.Filter):
    """A tick still running when the next is due is normal (coalesce); don't warn about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_QuietSkips())


class TickScheduler:
    def __init__(self, *, tick: Callable[[], dict[str, Any]], every_seconds: int,
                 clock: Clock, status: SchedulerStatus,
                 maintenance: Callable[[], object] | None = None,
                 maintenance_seconds: int = 900,
                 error_log: Path = errorlog.DEFAULT_FOLDER) -> None:
        self._tick = tick
        self._error_log = error_log
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

    def _failed(self, what: str, exc: Exception) -> str:
        """Log one line for a failed run (the traceback goes to the error log); its summary."""
        text = errorlog.summary(exc)
        path = errorlog.record(traceback.format_exc(), self._error_log)
        log.error("%s failed: %s (details in %s); the next %s tries again", what, text, path,
                  what)
        return text

    def _run_maintenance(self) -> None:
        try:
            self._maintenance()
        except Exception as exc:
            self._failed("maintenance", exc)

    def _run(self) -> None:
        started: datetime = self._clock()
        try:
            self.status.due = self._tick()["due"]
            self.status.last_tick_error = None
        except Exception as exc:  # a failed tick must not stop the next one
            self.status.due = getattr(exc, "summary", {}).get("due", [])
            self.status.last_tick_error = self._failed("tick", exc)
        finally:
            self.status.last_tick_at = started

    def start(self) -> None:
        self._scheduler.start()
        self.status.running = True

    def shutdown(self) -> None:
        self.status.running = False
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
