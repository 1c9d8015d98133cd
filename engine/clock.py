"""Time is injected: services take a ``Clock``; only the composition root reads the wall."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


def system_clock() -> datetime:
    """Wall-clock time; handed in by ``engine.bootstrap``, never called by the domain."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (tests, simulations, ``ripen tick --now``)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        self.now += by
        return self.now
