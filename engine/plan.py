"""Funnel planning (seed 004; seed 003's rule of ten): from a revenue target and the average
deal size, how many leads each stage of the waterfall needs, per source, and whether the
open pipeline reaches the target (BITKOM: "check whether the planned leads realistically
allow the revenue targets").

Conversion rates come, in this order, from the command line, from history (the database,
when every step has seen at least one conversion), or from the rule of ten: of 500 target
companies 50 become leads and 5 customers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from engine.errors import RipenError
from engine.report import FunnelReport

#: The demand waterfall as ripen records it.
STAGES = ("target", "lead", "mql", "sal", "won")
RULE_OF_TEN: tuple[tuple[str, str, float], ...] = (("target", "lead", 0.1),
                                                   ("lead", "won", 0.1))


class PlanError(RipenError):
    pass


@dataclass(frozen=True)
class Step:
    stage: str
    needed: int
    rate_to_next: float | None  # None for the last stage


@dataclass(frozen=True)
class History:
    """What happened to the leads created in the look-back window."""

    leads: int
    mql: int
    sal: int
    won: int
    by_source: Mapping[str, tuple[int, int]]  # source → (leads, won)

    @classmethod
    def of(cls, report: FunnelReport) -> History:
        """The report's waterfall of the look-back window (the same rules count both)."""
        total = report.total
        return cls(leads=total.inquiries, mql=total.mql, sal=total.sal, won=total.won,
                   by_source={source: (w.inquiries, w.won)
                              for source, w in report.by_source.items()})

    def rates(self) -> tuple[tuple[str, str, float], ...] | None:
        """lead → MQL → SAL → won, when every step converted at least once."""
        chain = (("lead", "mql", self.leads, self.mql), ("mql", "sal", self.mql, self.sal),
                 ("sal", "won", self.sal, self.won))
        if any(before == 0 or after == 0 for _, _, before, after in chain):
            return None
        return tuple((a, b, after / before) for a, b, before, after in chain)


@dataclass(frozen=True)
class Plan:
    customers: int
    steps: tuple[Step, ...]
    rates_from: str
    by_source: tuple[tuple[str, int, float | None], ...]  # source, leads needed, lead→won

    def needed(self, stage: str) -> int:
        return next(s.needed for s in self.steps if s.stage == stage)


def parse_rates(texts: Sequence[str]) -> tuple[tuple[str, str, float], ...]:
    """``lead:mql=0.25`` … into a chain; it must connect its stages in waterfall order."""
    chain = []
    for text in texts:
        try:
            pair, value = text.split("=", 1)
            start, end = (part.strip().lower() for part in pair.split(":", 1))
            rate = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
        except ValueError:
            raise PlanError(f'rate "{text}" is not FROM:TO=RATE, e.g. lead:mql=0.25 or '
                            "lead:mql=25%") from None
        if start not in STAGES or end not in STAGES or \
                STAGES.index(end) <= STAGES.index(start):
            raise PlanError(f'rate "{text}": stages go {" → ".join(STAGES)}')
        if not 0 < rate <= 1:
            raise PlanError(f'rate "{text}": a conversion rate is above 0 and at most 1')
        chain.append((start, end, rate))
    chain.sort(key=lambda link: STAGES.index(link[0]))
    for (_, end, _), (start, _, _) in pairwise(chain):
        if end != start:
            raise PlanError(f"the rates do not connect: {end} → … and then {start} → …")
    if chain and chain[-1][1] != "won":
        raise PlanError("the last rate must end at won (customers)")
    return tuple(chain)


def funnel_plan(*, revenue: float, deal_size: float,
                rates: Sequence[tuple[str, str, float]], rates_from: str,
                history: History | None = None) -> Plan:
    """Customers needed, then each earlier stage: needed / rate, rounded up."""
    if revenue <= 0 or deal_size <= 0:
        raise PlanError("revenue target and deal size must be positive")
    customers = math.ceil(revenue / deal_size - 1e-9)
    steps = [Step("won", customers, None)]
    needed = customers
    for start, _, rate in reversed(rates):
        needed = math.ceil(needed / rate - 1e-9)
        steps.append(Step(start, needed, rate))
    steps.reverse()
    plan_steps = tuple(steps)
    leads = next((s.needed for s in plan_steps if s.stage == "lead"), None)
    by_source: list[tuple[str, int, float | None]] = []
    if leads is not None and history is not None and history.leads:
        for source, (count, won) in sorted(history.by_source.items(),
                                           key=lambda kv: -kv[1][0]):
            by_source.append((source, math.ceil(leads * count / history.leads - 1e-9),
                              won / count if count else None))
    return Plan(customers, plan_steps, rates_from, tuple(by_source))


def expected_customers(open_pipeline: Mapping[str, int],
                       rates: Sequence[tuple[str, str, float]]) -> float:
    """Customers the open pipeline should bring: each stage's count × its chance to win.

    A stage the chain skips (MQL under the rule of ten) gets the chance of the chain stage
    before it (conservative)."""
    total = 0.0
    for stage, count in open_pipeline.items():
        starts = [start for start, _, _ in rates if STAGES.index(start) <= STAGES.index(stage)]
        if not starts:
            continue
        current, chance = starts[-1], 1.0
        for start, end, rate in rates:
            if start == current:
                chance *= rate
                current = end
        if current == "won":
            total += count * chance
    return total
