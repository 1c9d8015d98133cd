"""`ripen graph`: the Mermaid diagram shows the same steps and edges the engine follows."""

from __future__ import annotations

import re

import pytest

from engine.config.compiler import load_and_compile
from engine.config.journey import BranchStep
from engine.config.loader import ConfigPaths
from engine.diagram import mermaid
from tests.factories import REPO

CONFIG = load_and_compile(ConfigPaths.under(REPO))
EDGE = re.compile(r"^  s_(\w+) (?:-- (yes|no) )?--> s_(\w+)$")


def _edges(text: str) -> set[tuple[str, str]]:
    return {(m.group(1), m.group(3)) for line in text.splitlines() if (m := EDGE.match(line))}


@pytest.mark.parametrize("journey_id", sorted(CONFIG.journeys))
def test_the_diagram_has_exactly_the_compiled_edges(journey_id: str) -> None:
    """Every transition of the compiled journey is an edge, and there are no others."""
    journey = CONFIG.journeys[journey_id]
    text = mermaid(journey)
    expected = {(a.replace("-", "_"), b.replace("-", "_"))
                for a, targets in journey.transitions.items() for b in targets}
    assert _edges(text) == expected
    for step_id in journey.order:
        assert f'    s_{step_id.replace("-", "_")}' in text
    assert text.startswith("flowchart TD\n")
    assert text.count("subgraph") == text.count("\n  end") == len(
        journey.model.stages.declared())


def test_branches_are_labelled_yes_and_no() -> None:
    """The branch's `then` is the yes edge, `otherwise` the no edge."""
    text = mermaid(CONFIG.journeys["monika-marketing"])
    assert "  s_inf_engaged -- yes --> s_inf_done" in text.splitlines()
    assert "  s_inf_engaged -- no --> s_inf_second" in text.splitlines()
    branches = [s for s in CONFIG.journeys["monika-marketing"].steps.values()
                if isinstance(s, BranchStep)]
    assert text.count(" -- yes --> ") == len(branches)


def test_a_lead_who_never_engages_does_not_advance_by_time() -> None:
    """In the example journeys, the end of a stage's no-path leads nowhere (no advance)."""
    for journey_id in ("monika-marketing", "peter-produktionsleiter", "kurt-konstrukteur"):
        journey = CONFIG.journeys[journey_id]
        assert journey.transitions["inf-pause"] == ()
        assert journey.transitions["bef-pause"] == ()
        assert journey.transitions["eva-proof"] == ()


def test_exit_rules_and_the_slowest_case_are_drawn() -> None:
    """The path most leads take — a stage's exit rule — is a dotted edge from the stage to
    the next stage's first step (EVA's own rule: two events, a webinar counts); the last
    stage has none; the slowest case hangs off the first step."""
    journey = CONFIG.journeys["monika-marketing"]
    lines = mermaid(journey).splitlines()
    exits = [line for line in lines if "exit rule:" in line]
    assert exits == [
        '  INF -. "exit rule: 1× click/download on INF content" .-> s_bef_first',
        '  BEF -. "exit rule: 1× click/download on BEF content" .-> s_eva_first',
        '  EVA -. "exit rule: 2× click/download/webinar_attended on EVA content" .-> '
        "s_bew_first"]
    rule = journey.model.stages.EVA.exit  # type: ignore[union-attr]
    assert rule is not None
    assert (rule.engaged, rule.events) == (2, ["click", "download", "webinar_attended"])
    assert "  s_inf_intro -. never engages .-> slowest" in lines
    assert any(line.startswith('  slowest(["slowest case: ') and "praxisbrief" in line
               for line in lines)


def test_boxes_carry_the_same_edges_and_exit_rules() -> None:
    """The workbench's boxes: every compiled transition, branch labels, the exit rules."""
    from engine.diagram import boxes

    for journey in CONFIG.journeys.values():
        stages = boxes(journey)
        edges = {(step.id, target) for stage in stages for step in stage.steps
                 for _, target in step.edges}
        assert edges == {(a, b) for a, targets in journey.transitions.items() for b in targets}
    stages = {s.stage: s for s in boxes(CONFIG.journeys["monika-marketing"])}
    assert stages["INF"].exit_rule == "1× click/download on INF content → BEF"
    assert stages["INF"].exit_to == "bef-first"
    assert stages["BEW"].exit_rule is None
    [branch] = [s for s in stages["INF"].steps if s.id == "inf-engaged"]
    assert branch.edges == (("yes", "inf-done"), ("no", "inf-second"))
