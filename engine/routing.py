"""Which rep gets a handover: rules first, then a round-robin fair in quantity *and* quality.

Rules (``sla.routing.rules``) pick a pool of reps by region, industry, company size or
persona; the first matching rule wins, and without one every active rep is in the pool.
Within the pool the lead goes to a rep with the fewest handovers this period; among those,
to the one whose mean grade moves closest to the pool's mean — so a partner channel does not
end up with only the weak leads (BITKOM), and nobody collects only the A leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engine.config.sla import Rep, Routing, RoutingRule

#: Grade letters as numbers for averaging (A best).
GRADE_VALUE = {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0}


@dataclass(frozen=True)
class LeadFacts:
    region: str | None
    industry: str | None
    company_size: int | None
    persona: str | None
    fit: str  # A–D


@dataclass
class Tally:
    """Handovers of one rep in the current period."""

    count: int = 0
    grade_sum: float = 0.0

    @property
    def mean(self) -> float:
        return self.grade_sum / self.count if self.count else 0.0


@dataclass(frozen=True)
class Assignment:
    rep: Rep
    rule: str | None  # the routing rule that chose the pool, None for everyone


@dataclass
class Balance:
    tallies: dict[str, Tally] = field(default_factory=dict)

    def add(self, rep_id: str, fit: str, count: int = 1) -> None:
        tally = self.tallies.setdefault(rep_id, Tally())
        tally.count += count
        tally.grade_sum += GRADE_VALUE.get(fit, 1.0) * count


def period_start(now: datetime, period: str) -> datetime:
    """Start of the month, quarter or year containing ``now`` (UTC)."""
    now = now.astimezone(UTC)
    if period == "month":
        return datetime(now.year, now.month, 1, tzinfo=UTC)
    if period == "quarter":
        return datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=UTC)
    return datetime(now.year, 1, 1, tzinfo=UTC)


def matches(rule: RoutingRule, lead: LeadFacts) -> bool:
    when = rule.when
    if when.regions and (lead.region or "").upper() not in {r.upper() for r in when.regions}:
        return False
    if when.industries and (lead.industry or "").lower() not in {
            i.lower() for i in when.industries}:
        return False
    if when.personas and lead.persona not in when.personas:
        return False
    size = lead.company_size
    if when.company_size_min is not None and (size is None or size < when.company_size_min):
        return False
    return not (when.company_size_max is not None and
                (size is None or size > when.company_size_max))


def assign(lead: LeadFacts, routing: Routing, reps: Iterable[Rep],
           balance: Balance) -> Assignment | None:
    """The rep for this lead (and count it in ``balance``); None when no rep is active."""
    active: Mapping[str, Rep] = {rep.id: rep for rep in reps if rep.active}
    rule = next((r for r in routing.rules if matches(r, lead)), None)
    pool = [active[i] for i in rule.assign if i in active] if rule else []
    if not pool:
        rule = None
        pool = list(active.values())
    if not pool:
        return None
    value = GRADE_VALUE.get(lead.fit, 1.0)
    tallies = [balance.tallies.get(rep.id, Tally()) for rep in pool]
    fewest = min(t.count for t in tallies)
    total = sum(t.grade_sum for t in tallies) + value
    pool_mean = total / (sum(t.count for t in tallies) + 1)

    def distance(index: int) -> tuple[float, int]:
        tally = tallies[index]
        after = (tally.grade_sum + value) / (tally.count + 1)
        return abs(after - pool_mean), index

    candidates = [i for i, t in enumerate(tallies) if t.count == fewest]
    chosen = pool[min(candidates, key=distance)]
    balance.add(chosen.id, lead.fit)
    return Assignment(chosen, rule.id if rule else None)
