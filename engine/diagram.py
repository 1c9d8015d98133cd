"""A journey as a Mermaid flowchart, drawn from the compiled transitions (what really runs)."""

from __future__ import annotations

import re

from engine.config.compiler import CompiledJourney
from engine.config.journey import (
    AdvanceStep,
    BranchStep,
    Condition,
    ExitStep,
    GoalStep,
    SendStep,
    Step,
    WaitStep,
)
from engine.durations import format_duration
from engine.stages import STAGE_NAMES


def _node(step_id: str) -> str:
    return "s_" + re.sub(r"[^A-Za-z0-9_]", "_", step_id)


def _text(value: str) -> str:
    return value.replace('"', "#quot;")


def _condition(when: Condition) -> str:
    if when.event is not None:
        scope = f" on {when.content}" if when.content else (
            f" on {when.stage} content" if when.stage else "")
        return f"{when.event}{scope}"
    if when.engagement_at_least is not None:
        return f"engagement ≥ {when.engagement_at_least}"
    return f"fit ≥ {when.fit_at_least}"


def _shape(step: Step) -> tuple[str, str, str]:
    """(opening, label, closing) in Mermaid's shape syntax for this kind of step."""
    if isinstance(step, SendStep):
        offer = f" + fast lane {step.send.fast_lane_offer}" if step.send.fast_lane_offer else ""
        return "[", f"send {step.send.content}<br/>{step.send.template}{offer}", "]"
    if isinstance(step, WaitStep):
        return "([", f"wait {format_duration(step.wait)}", "])"
    if isinstance(step, BranchStep):
        return "{", (f"{_condition(step.branch.when)}<br/>within "
                     f"{format_duration(step.branch.within)}?"), "}"
    if isinstance(step, AdvanceStep):
        return "[/", f"advance to {step.advance}", "/]"
    if isinstance(step, GoalStep):
        return "((", f"goal: {step.goal}", "))"
    assert isinstance(step, ExitStep)
    return "[[", f"exit: {step.exit}", "]]"


def mermaid(journey: CompiledJourney) -> str:
    """``flowchart TD`` with a subgraph per stage, edges as the engine follows them."""
    lines = ["flowchart TD", f"  %% {journey.name}"]
    for stage, plan in journey.model.stages.declared():
        lines.append(f'  subgraph {stage.value}["{stage.value} {STAGE_NAMES[stage.value]}"]')
        for step in plan.steps:
            opening, label, closing = _shape(step)
            lines.append(f'    {_node(step.id)}{opening}"{_text(step.id)}: {_text(label)}"'
                         f"{closing}")
        lines.append("  end")
    for step_id in journey.order:
        step = journey.steps[step_id]
        if isinstance(step, BranchStep):
            for label, target in (("yes", step.branch.then), ("no", step.branch.otherwise)):
                resolved = journey.target(step_id, target)
                if resolved:
                    lines.append(f"  {_node(step_id)} -- {label} --> {_node(resolved)}")
        else:
            lines.extend(f"  {_node(step_id)} --> {_node(target)}"
                         for target in journey.transitions.get(step_id, ()))
    slowest = journey.model.slowest_case
    target = f"journey {slowest.move_to}" if slowest.move_to else "leave the journey"
    lines.append(f'  slowest(["slowest case: {format_duration(slowest.after)} without '
                 f'engagement → {target}"])')
    return "\n".join(lines) + "\n"
