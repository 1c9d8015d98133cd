"""Routing: rules first, then fairness in quantity and quality over 1,000 handovers."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime

import pytest

from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.routing import GRADE_VALUE, Balance, LeadFacts, assign, period_start
from tests.factories import REPO

CONFIG = load_and_compile(ConfigPaths.under(REPO))
SLA = CONFIG.sla


def _lead(rng: random.Random) -> LeadFacts:
    """A mix the rules can serve fairly: a quarter alpine, half the rest industrial."""
    return LeadFacts(region=rng.choice(["DE", "DE", "DE", "DE", "DE", "DE", "AT", "CH"]),
                     industry=None, company_size=rng.choice([20, 200, 2000]),
                     persona=rng.choice(["monika-marketing", "monika-marketing",
                                         "peter-produktionsleiter", "kurt-konstrukteur"]),
                     fit=rng.choices("ABCD", weights=[1, 3, 4, 2])[0])


def test_rules_pick_the_pool_first() -> None:
    balance = Balance()
    alpine = assign(LeadFacts("AT", None, 50, "monika-marketing", "B"), SLA.routing,
                    SLA.reps, balance)
    assert alpine is not None
    assert (alpine.rule, alpine.rep.id) == ("alpine", "alpen-partner")
    industry = assign(LeadFacts("DE", None, 50, "kurt-konstrukteur", "B"), SLA.routing,
                      SLA.reps, balance)
    assert industry is not None
    assert industry.rule == "industry"
    assert industry.rep.id in ("clara-industrie", "bernd-sued")
    anyone = assign(LeadFacts("DE", None, 50, "monika-marketing", "C"), SLA.routing, SLA.reps,
                    balance)
    assert anyone is not None
    assert anyone.rule is None


def test_1000_handovers_are_fair_in_count_and_grade_per_rep_and_channel() -> None:
    """Counts and mean grades per rep within the configured tolerance; partners included."""
    rng = random.Random(20261123)
    balance = Balance()
    for _ in range(1000):
        assert assign(_lead(rng), SLA.routing, SLA.reps, balance) is not None
    tallies = balance.tallies
    assert set(tallies) == {rep.id for rep in SLA.reps}
    counts = [t.count for t in tallies.values()]
    means = [t.mean for t in tallies.values()]
    tolerance = SLA.routing.tolerance
    print("\nrouting over 1,000 handovers:",
          {rep: (t.count, round(t.mean, 2)) for rep, t in sorted(tallies.items())})
    assert (max(counts) - min(counts)) / statistics.mean(counts) <= tolerance
    assert (max(means) - min(means)) / statistics.mean(means) <= tolerance
    partner = tallies["alpen-partner"].mean
    direct = statistics.mean(t.mean for rep, t in tallies.items() if rep != "alpen-partner")
    assert abs(partner - direct) / direct <= tolerance  # partners do not get only weak leads


def test_plain_round_robin_would_not_balance_quality() -> None:
    """The guard is real: strict alternation in a pool with a sorted stream skews grades."""
    balance = Balance()
    grades = ["A", "D"] * 200
    reps = [rep for rep in SLA.reps if rep.id in ("anna-nord", "bernd-sued")]
    for grade in grades:
        assign(LeadFacts("DE", None, 50, "monika-marketing", grade), SLA.routing.model_copy(
            update={"rules": []}), reps, balance)
    means = {rep: round(t.mean, 2) for rep, t in balance.tallies.items()}
    assert means == {"anna-nord": 2.5, "bernd-sued": 2.5}
    naive = {"anna-nord": GRADE_VALUE["A"], "bernd-sued": GRADE_VALUE["D"]}
    assert naive != means


@pytest.mark.parametrize(("period", "start"), [
    ("month", datetime(2026, 11, 1, tzinfo=UTC)),
    ("quarter", datetime(2026, 10, 1, tzinfo=UTC)),
    ("year", datetime(2026, 1, 1, tzinfo=UTC)),
])
def test_the_balance_period_starts_where_expected(period: str, start: datetime) -> None:
    assert period_start(datetime(2026, 11, 23, 9, tzinfo=UTC), period) == start
