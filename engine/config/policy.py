"""The send policy (``config/policy.yaml``): time zone, quiet hours, business days, caps."""

from __future__ import annotations

from datetime import date, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from engine.config.types import Duration, Frozen, ripen_error

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _monday_to_friday() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class QuietHours(Frozen):
    """No marketing mail between ``start`` and ``end`` (lead's local time); may span midnight."""

    start: time
    end: time


class FrequencyCap(Frozen):
    """At most ``max`` marketing mails per lead within ``per``, across all journeys."""

    max: int = Field(ge=1)
    per: Duration


class Policy(Frozen):
    timezone: str = Field(description="IANA time zone, e.g. Europe/Berlin")
    quiet_hours: QuietHours | None = None
    business_days: list[Weekday] = Field(default_factory=_monday_to_friday, min_length=1)
    holidays: list[date] = Field(default_factory=list)
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ripen_error(
                f'"{value}" is not a known time zone', "use an IANA name like Europe/Berlin"
            ) from None
        return value

    @field_validator("business_days")
    @classmethod
    def _unique_days(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ripen_error("a day is listed twice", "list each weekday once")
        return value
