"""The send policy: quiet hours, business days, holidays and caps defer, never drop."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from engine.config.policy import FrequencyCap, Policy, QuietHours
from engine.policy import earliest_send

POLICY = Policy(timezone="Europe/Berlin", quiet_hours=QuietHours(start=time(19), end=time(8)),
                business_days=["mon", "tue", "wed", "thu", "fri"],
                holidays=[date(2026, 12, 24)],
                frequency_caps=[FrequencyCap(max=1, per=timedelta(days=1)),
                                FrequencyCap(max=2, per=timedelta(days=7))])
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (CET)


def test_an_allowed_moment_is_kept() -> None:
    """Monday 10:00 local, nothing sent lately: send now."""
    assert earliest_send(now=MONDAY_10, policy=POLICY, recent=[]) == (MONDAY_10, None)


def test_quiet_hours_move_to_the_morning_in_the_leads_zone() -> None:
    """20:00 in Berlin → 08:00 next morning Berlin; the same instant in New York is fine."""
    evening = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 20:00 Berlin, 14:00 New York
    assert earliest_send(now=evening, policy=POLICY, recent=[]) == (
        datetime(2026, 11, 24, 7, 0, tzinfo=UTC), "quiet_hours")
    assert earliest_send(now=evening, policy=POLICY, recent=[],
                         time_zone="America/New_York") == (evening, None)


def test_weekends_and_holidays_wait_for_the_next_business_morning() -> None:
    """Saturday noon → Monday 08:00; Christmas Eve (a Thursday) → Friday 08:00."""
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    assert earliest_send(now=saturday, policy=POLICY, recent=[]) == (
        datetime(2026, 11, 30, 7, 0, tzinfo=UTC), "business_days")
    christmas_eve = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)
    assert earliest_send(now=christmas_eve, policy=POLICY, recent=[]) == (
        datetime(2026, 12, 25, 7, 0, tzinfo=UTC), "holiday")


def test_frequency_caps_defer_until_the_oldest_mail_ages_out() -> None:
    """One a day and two a week: the third mail in a week waits for the first to age out."""
    sent = [MONDAY_10 - timedelta(hours=2)]
    assert earliest_send(now=MONDAY_10, policy=POLICY, recent=sent) == (
        sent[0] + timedelta(days=1), "frequency_cap")
    week = [MONDAY_10 - timedelta(days=3), MONDAY_10 - timedelta(days=2)]
    assert earliest_send(now=MONDAY_10, policy=POLICY, recent=week) == (
        week[0] + timedelta(days=7), "frequency_cap")


def test_public_holidays_of_a_region_hold_mail_back_in_any_year() -> None:
    """With DE/BY: no marketing mail on Ostermontag 2027 nor on Fronleichnam (Bavaria only:
    Berlin sends); the company's own 12-24 holds every year — the example configuration's
    setting, not a list of dates that runs out."""
    from engine.config.compiler import load_and_compile
    from engine.config.loader import ConfigPaths
    from engine.config.policy import PublicHolidays
    from tests.factories import REPO

    bavaria = load_and_compile(ConfigPaths.under(REPO)).policy
    assert bavaria.public_holidays == PublicHolidays(country="DE", subdivision="BY")
    easter_monday = datetime(2027, 3, 29, 8, 0, tzinfo=UTC)     # 10:00 in Munich (CEST)
    assert earliest_send(now=easter_monday, policy=bavaria, recent=[]) == (
        datetime(2027, 3, 30, 6, 0, tzinfo=UTC), "holiday")
    corpus_christi = datetime(2027, 5, 27, 8, 0, tzinfo=UTC)    # Thursday
    assert earliest_send(now=corpus_christi, policy=bavaria, recent=[]) == (
        datetime(2027, 5, 28, 6, 0, tzinfo=UTC), "holiday")
    berlin = bavaria.model_copy(update={"public_holidays": PublicHolidays(
        country="DE", subdivision="BE")})
    assert earliest_send(now=corpus_christi, policy=berlin, recent=[]) == (corpus_christi, None)
    christmas_eve_2031 = datetime(2031, 12, 24, 9, 0, tzinfo=UTC)  # a Wednesday
    assert earliest_send(now=christmas_eve_2031, policy=bavaria, recent=[])[1] == "holiday"


def test_an_unknown_country_or_region_is_refused_with_the_choices() -> None:
    """policy.yaml's public_holidays: a country the package does not know, or a region of
    another country, is a validation error naming what exists."""
    import pytest
    from pydantic import ValidationError

    from engine.config.policy import PublicHolidays

    with pytest.raises(ValidationError, match='no public holidays are known for "XX"'):
        PublicHolidays(country="XX")
    with pytest.raises(ValidationError, match='DE has no subdivision "ZH"'):
        PublicHolidays(country="DE", subdivision="ZH")
