"""Funnel planning: the rule of ten, a hand-computed chain, rates checked, pipeline value."""

from __future__ import annotations

import pytest

from engine.plan import (
    RULE_OF_TEN,
    History,
    PlanError,
    expected_customers,
    funnel_plan,
    parse_rates,
)


def test_the_rule_of_ten_500_targets_50_leads_5_customers() -> None:
    plan = funnel_plan(revenue=250_000, deal_size=50_000, rates=RULE_OF_TEN, rates_from="x")
    assert [(s.stage, s.needed) for s in plan.steps] == [("target", 500), ("lead", 50),
                                                         ("won", 5)]


def test_a_hand_computed_chain_rounds_up_at_every_stage() -> None:
    # 1,000,000 / 45,000 = 22.2 → 23 customers; SAL 23 / 0.3 = 76.7 → 77;
    # MQL 77 / 0.5 = 154; leads 154 / 0.25 = 616.
    rates = parse_rates(["lead:mql=0.25", "mql:sal=50%", "sal:won=0.3"])
    plan = funnel_plan(revenue=1_000_000, deal_size=45_000, rates=rates, rates_from="cli",
                       history=History(leads=100, mql=20, sal=10, won=3,
                                       by_source={"website": (75, 3), "trade_fair": (25, 0)}))
    assert [(s.stage, s.needed) for s in plan.steps] == [
        ("lead", 616), ("mql", 154), ("sal", 77), ("won", 23)]
    assert plan.by_source == (("website", 462, 0.04), ("trade_fair", 154, 0.0))


@pytest.mark.parametrize(("texts", "message"), [
    (["lead-mql=0.2"], "is not FROM:TO=RATE"),
    (["mql:lead=0.2"], "stages go target → lead → mql → sal → won"),
    (["lead:mql=1.5"], "above 0 and at most 1"),
    (["lead:mql=0.2", "sal:won=0.3"], "do not connect: mql → … and then sal → …"),
    (["lead:mql=0.2"], "the last rate must end at won"),
])
def test_bad_rates_are_refused_with_the_reason(texts: list[str], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_rates(texts)


def test_history_gives_rates_only_when_every_step_converted() -> None:
    assert History(leads=200, mql=40, sal=20, won=5, by_source={}).rates() == (
        ("lead", "mql", 0.2), ("mql", "sal", 0.5), ("sal", "won", 0.25))
    assert History(leads=200, mql=40, sal=20, won=0, by_source={}).rates() is None


def test_the_open_pipeline_is_valued_at_each_stage_s_chance_to_win() -> None:
    rates = parse_rates(["lead:mql=0.2", "mql:sal=0.5", "sal:won=0.25"])
    assert expected_customers({"mql": 40, "sal": 8}, rates) == pytest.approx(40 * 0.125 + 2)
    # The rule of ten has no MQL step: an MQL counts with the lead's chance (conservative).
    assert expected_customers({"mql": 30}, RULE_OF_TEN) == pytest.approx(3.0)
