"""When marketing mail may go out (``config/policy.yaml``): blocked sends are deferred.

Pure: the earliest allowed time for a send, given the lead's time zone and the lead's
recent marketing mails (for the frequency caps), across all journeys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.config.policy import Policy

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _quiet(policy: Policy, moment: time) -> bool:
    hours = policy.quiet_hours
    if hours is None:
        return False
    if hours.start <= hours.end:
        return hours.start <= moment < hours.end
    return moment >= hours.start or moment < hours.end  # spans midnight


def _end_of_quiet(policy: Policy, local: datetime) -> datetime:
    hours = policy.quiet_hours
    assert hours is not None
    end = local.replace(hour=hours.end.hour, minute=hours.end.minute, second=0, microsecond=0)
    return end if end > local else end + timedelta(days=1)


def earliest_send(*, now: datetime, policy: Policy, recent: Sequence[datetime],
                  time_zone: str | None = None) -> tuple[datetime, str | None]:
    """The earliest time a marketing mail may go out, and the rule that first held it
    back (business_days, holiday, quiet_hours, frequency_cap; None when it may go now)."""
    zone = ZoneInfo(time_zone or policy.timezone)
    candidate = now
    reason: str | None = None
    for _ in range(400):  # bounded: a year of blocked days at most
        local = candidate.astimezone(zone)
        blocked_day = WEEKDAYS[local.weekday()] not in policy.business_days
        if blocked_day or policy.is_holiday(local.date()):
            reason = reason or ("business_days" if blocked_day else "holiday")
            next_day = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
            candidate = next_day.astimezone(now.tzinfo)
            continue
        if _quiet(policy, local.time()):
            reason = reason or "quiet_hours"
            candidate = _end_of_quiet(policy, local).astimezone(now.tzinfo)
            continue
        later = candidate
        for cap in policy.frequency_caps:
            window = sorted(t for t in recent if t > candidate - cap.per)
            if len(window) >= cap.max:
                later = max(later, window[-cap.max] + cap.per)
        if later != candidate:
            reason = reason or "frequency_cap"
            candidate = later
            continue
        return candidate, reason
    return candidate, reason
