"""Reports kept ahead: the funnel report of the default period, computed by the maintenance
run and read by the workbench's funnel page.

Counting the funnel reads every lead of the period (100k leads: ~3 s on SQLite, where one
scan and grouping of the lead table alone takes ~0.2 s), so a page that computed it per
request could not answer in 300 ms. The maintenance run (every 15 minutes by default) keeps
it; the page shows the kept report with its time and computes it live only when there is
none for today's period or it is older than the page allows. ``ripen report`` and
``GET /reports/funnel`` always compute live, for any period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.report import FunnelReport, funnel_report, period
from engine.store import reporting
from engine.store.uow import UnitOfWork

FUNNEL = "funnel"


@dataclass(frozen=True)
class Kept:
    report: FunnelReport
    computed_at: datetime
    seconds: float  # how long computing it took


def keep_funnel(uow: UnitOfWork, now: datetime, monotonic: Callable[[], float]) -> Kept:
    """Compute the funnel of the default period at ``now`` and keep it (replacing the last;
    committed)."""
    start, end = period(None, None, now)
    began = monotonic()
    report = funnel_report(uow, start, end)
    seconds = monotonic() - began
    reporting.keep(uow.session, FUNNEL, start=start, end=end, computed_at=now,
                   seconds=seconds, data=report.as_json())
    # False when another process kept its count first (two first page views, or the
    # maintenance run beside one): theirs stays, this one is shown all the same.
    uow.commit_unless_taken()
    return Kept(report, now, seconds)


def kept_funnel(uow: UnitOfWork, now: datetime, max_age: timedelta) -> Kept | None:
    """The kept funnel, if it is of the default period at ``now`` and at most ``max_age``
    old (a report kept "in the future" — the clock was set back — does not count)."""
    row = reporting.kept(uow.session, FUNNEL)
    start, end = period(None, None, now)
    if row is None or (row.period_start, row.period_end) != (start, end):
        return None
    if not now - max_age <= row.computed_at <= now:
        return None
    return Kept(FunnelReport.from_json(row.data), row.computed_at, row.seconds)
