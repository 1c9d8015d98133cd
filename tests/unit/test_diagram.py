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
