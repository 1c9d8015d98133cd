"""The send policy (``config/policy.yaml``): time zone, quiet hours, business days, public
holidays of a country and region (the ``holidays`` package: every year), the company's own
days off, frequency caps."""

from __future__ import annotations

from datetime import date, time
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as public
from pydantic import Field, StringConstraints, WithJsonSchema, field_validator, model_validator

from engine.config.types import Duration, Frozen, ripen_error

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _monday_to_friday() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


#: A time of day as the YAML writes it, "19:00" (JSON Schema's ``format: time`` would ask
#: for seconds and a zone, and editors would mark a correct file red).
TimeOfDay = Annotated[time, WithJsonSchema({
    "type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
    "description": "a time of day, HH:MM, e.g. 19:00"})]


class QuietHours(Frozen):
    """No marketing mail between ``start`` and ``end`` (lead's local time); may span midnight."""

    start: TimeOfDay
    end: TimeOfDay


class FrequencyCap(Frozen):
    """At most ``max`` marketing mails per lead within ``per``, across all journeys."""

    max: int = Field(ge=1)
    per: Duration


#: A day off every year, written month-day: ``12-24``.
AnnualDay = Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]


class PublicHolidays(Frozen):
    """The public holidays of a country (ISO 3166, ``DE``) and, where they differ by region,
    a subdivision (``BY`` for Bavaria: Fronleichnam, Allerheiligen …)."""

    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 country code, e.g. DE")
    subdivision: str | None = Field(default=None, description="e.g. BY, NW, BE (Germany)")

    @model_validator(mode="after")
    def _known(self) -> PublicHolidays:
        supported = public.list_supported_countries()
        if self.country not in supported:
            raise ripen_error(f'no public holidays are known for "{self.country}"',
                              "use an ISO 3166 country code such as DE, AT or CH")
        regions = supported[self.country]
        if self.subdivision is not None and self.subdivision not in regions:
            raise ripen_error(f'{self.country} has no subdivision "{self.subdivision}"',
                              "use one of: " + ", ".join(regions))
        return self

    def has(self, day: date) -> bool:
        return day in _calendar(self.country, self.subdivision)


@cache
def _calendar(country: str, subdivision: str | None) -> Any:
    """The country's holiday calendar; it adds each year as it is asked about."""
    return public.country_holidays(country, subdiv=subdivision)


class Policy(Frozen):
    timezone: str = Field(description="IANA time zone, e.g. Europe/Berlin")
    quiet_hours: QuietHours | None = None
    business_days: list[Weekday] = Field(default_factory=_monday_to_friday, min_length=1)
    public_holidays: PublicHolidays | None = Field(
        default=None, description="no marketing mail on the public holidays of this country "
        "(and subdivision), in any year")
    holidays: list[date | AnnualDay] = Field(
        default_factory=list, description="the company's own days off: a date (2026-12-31) "
        "or every year's month-day (12-24)")
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)

    def is_holiday(self, day: date) -> bool:
        """A public holiday of ``public_holidays``, or one of the company's own days."""
        if day in self.holidays or f"{day:%m-%d}" in self.holidays:
            return True
        return self.public_holidays is not None and self.public_holidays.has(day)

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
