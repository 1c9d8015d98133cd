"""A/B tests on a send step: which variant a lead gets, how each did, and who wins.

Assignment is stable: a hash of the journey, the step and the lead's public id picks the
variant by its share, the same at every tick, in every process and after a restart.

Results per variant (mails of the step sent as that variant): delivered, opened (only leads
who consented to tracking can open), clicked (a person's click on the mail's own links, mail
scanners left out) and reached the next stage (the lead entered a later stage of the journey
after the mail). The test is Bayesian: each variant's rate has a Beta(1 + successes,
1 + failures) posterior (a uniform prior); the probability that a variant is the best is
computed exactly for two variants (Evan Miller's closed form) and by a seeded Monte Carlo
estimate (100,000 draws) for more. "B beats A on clicks, 97 % probability" means: given these
counts, B's true click rate is higher than A's with probability 0.97.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from math import exp, lgamma, log
from typing import Any

from engine.config.compiler import CompiledConfig, CompiledJourney
from engine.config.journey import SendAction, SendStep, Variant, WinnerRule
from engine.stages import JourneyStage
from engine.store import abtests
from engine.store.uow import UnitOfWork

METRICS = {"click": "clicked", "open": "opened", "next_stage": "next_stage"}


def assign(send: SendAction, journey_id: str, step_id: str, lead_public_id: str) -> Variant:
    """The lead's variant of the step: stable, by the variants' shares."""
    digest = hashlib.sha256(f"{journey_id}:{step_id}:{lead_public_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % 10_000 / 100  # 0 ≤ point < 100
    edge = 0.0
    for variant in send.variants:
        edge += variant.share
        if point < edge:
            return variant
    return send.variants[-1]


@dataclass(frozen=True)
class VariantResult:
    variant: str
    delivered: int
    opened: int
    clicked: int
    next_stage: int
    best: float | None = None   # probability of being the best on the test's metric

    def rate(self, metric: str) -> float | None:
        return getattr(self, METRICS[metric]) / self.delivered if self.delivered else None


@dataclass(frozen=True)
class AbTestResult:
    journey: str
    step: str
    metric: str
    variants: list[VariantResult]
    winner: str | None          # a variant the winner rule has named (it goes to everyone)
    verdict: str

    def as_json(self) -> dict[str, Any]:
        return {"journey": self.journey, "step": self.step, "metric": self.metric,
                "winner": self.winner, "verdict": self.verdict,
                "variants": [{**v.__dict__, "rate": v.rate(self.metric)}
                             for v in self.variants]}


def _log_beta(a: float, b: float) -> float:
    return lgamma(a) + lgamma(b) - lgamma(a + b)


def beats(successes_b: int, trials_b: int, successes_a: int, trials_a: int) -> float:
    """P(rate B > rate A) under uniform priors, exactly (Evan Miller's formula)."""
    alpha_a, beta_a = 1 + successes_a, 1 + trials_a - successes_a
    alpha_b, beta_b = 1 + successes_b, 1 + trials_b - successes_b
    total = 0.0
    for i in range(alpha_b):
        total += exp(_log_beta(alpha_a + i, beta_a + beta_b) - log(beta_b + i)
                     - _log_beta(1 + i, beta_b) - _log_beta(alpha_a, beta_a))
    return min(1.0, max(0.0, total))


def best_probabilities(counts: list[tuple[int, int]], *, seed: int = 1,
                       draws: int = 100_000) -> list[float]:
    """For each (successes, trials): the probability that its rate is the highest."""
    if len(counts) == 2:
        (s_a, n_a), (s_b, n_b) = counts
        b_wins = beats(s_b, n_b, s_a, n_a)
        return [1.0 - b_wins, b_wins]
    rng = random.Random(seed)
    wins = [0] * len(counts)
    for _ in range(draws):
        sample = [rng.betavariate(1 + s, 1 + n - s) for s, n in counts]
        wins[sample.index(max(sample))] += 1
    return [w / draws for w in wins]


def evaluate(journey: str, step: str, send: SendAction,
             counts: dict[str, dict[str, int]]) -> AbTestResult:
    """The test's results from its counts per variant (missing variants count 0)."""
    rule = send.winner or WinnerRule()
    metric = rule.metric
    rows = [counts.get(v.id, {}) for v in send.variants]
    field = METRICS[metric]
    probabilities = best_probabilities([(r.get(field, 0), r.get("delivered", 0))
                                        for r in rows])
    arms = [VariantResult(v.id, r.get("delivered", 0), r.get("opened", 0),
                          r.get("clicked", 0), r.get("next_stage", 0), round(p, 4))
            for v, r, p in zip(send.variants, rows, probabilities, strict=True)]
    leader = max(arms, key=lambda r: r.best or 0.0)
    enough = all(r.delivered >= rule.min_sends for r in arms)
    winner = leader.variant if send.winner is not None and enough and \
        (leader.best or 0.0) >= rule.probability else None
    others = ", ".join(r.variant for r in arms if r is not leader)
    what = {"click": "clicks", "open": "opens", "next_stage": "reaching the next stage"}[metric]
    verdict = f"{leader.variant} beats {others} on {what}, {percent(leader.best)} probability"
    if not all(r.delivered for r in arms):
        verdict = "not enough mails yet: every variant needs some"
    elif winner is not None:
        verdict += f"; the winner rule sends {winner} to everyone now"
    elif send.winner is not None and not enough:
        verdict += f"; the winner rule waits for {rule.min_sends} mails per variant"
    return AbTestResult(journey, step, metric, arms, winner, verdict)


def percent(probability: float | None) -> str:
    """A probability as a marketer reads it: "97 %", never a false "100 %"."""
    if probability is None:
        return "-"
    if probability >= 0.995:
        return "> 99 %"
    if probability <= 0.005:
        return "< 1 %"
    return f"{probability * 100:.0f} %"


def later(stage: str, than: str) -> bool:
    """Whether ``stage`` comes after ``than`` in the funnel."""
    order = list(JourneyStage)
    try:
        return order.index(JourneyStage(stage)) > order.index(JourneyStage(than))
    except ValueError:
        return False


def step_result(uow: UnitOfWork, journey: CompiledJourney, step_id: str) -> AbTestResult:
    """The A/B test of one send step, from the store."""
    step = journey.steps[step_id]
    assert isinstance(step, SendStep)
    stage = journey.stage_of[step_id].value
    later_stages = [s.value for s in journey.entry if later(s.value, stage)]
    counts = abtests.variant_counts(uow.session, journey.id, step_id, later_stages)
    return evaluate(journey.id, step_id, step.send, counts)


def results(uow: UnitOfWork, config: CompiledConfig) -> list[AbTestResult]:
    """Every A/B test of the live journeys."""
    return [step_result(uow, journey, step_id)
            for journey in sorted(config.journeys.values(), key=lambda j: j.id)
            for step_id in journey.order
            if isinstance(journey.steps[step_id], SendStep)
            and journey.steps[step_id].send.variants]  # type: ignore[union-attr]
