"""The embedded scheduler: a failed tick is one console line, its traceback goes to a file."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from engine.clock import system_clock
from ripen.api.app import SchedulerStatus
from ripen.scheduler import TickScheduler


def test_a_failed_tick_logs_one_line_keeps_the_traceback_and_the_next_tick_runs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The first tick fails: one error line naming the error and the log file, the traceback
    in that file, the error on the status; the next tick runs and clears it."""
    calls: list[int] = []

    def tick() -> dict[str, object]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Timed out while attempting to connect\nstdout: noise")
        return {"due": [{"journey": "j", "version": "1", "step": "s", "due": 3}]}

    status = SchedulerStatus()
    errors: list[str | None] = []
    scheduler = TickScheduler(tick=tick, every_seconds=1, clock=system_clock, status=status,
                              error_log=tmp_path / "log")
    with caplog.at_level(logging.ERROR, logger="ripen.scheduler"):
        scheduler.start()
        try:
            deadline = time.monotonic() + 30
            while len(calls) < 2 and time.monotonic() < deadline:
                if status.last_tick_error:
                    errors.append(status.last_tick_error)
                time.sleep(0.02)
        finally:
            scheduler.shutdown()
    log_file = tmp_path / "log" / "ripen-error.log"
    [record] = [r for r in caplog.records if r.name == "ripen.scheduler"]
    assert record.getMessage() == (
        "tick failed: RuntimeError: Timed out while attempting to connect "
        f"(details in {log_file}); the next tick tries again")
    assert "Traceback (most recent call last)" in log_file.read_text()
    assert "stdout: noise" in log_file.read_text()
    assert errors[0] == "RuntimeError: Timed out while attempting to connect"
    assert len(calls) == 2
    assert status.last_tick_error is None
    assert status.due == [{"journey": "j", "version": "1", "step": "s", "due": 3}]
