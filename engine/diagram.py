"""A journey as a diagram, drawn from the compiled transitions (what really runs): a Mermaid
flowchart (``ripen graph``) and boxes per stage and step (the workbench's page and
``ripen graph --html``). Both show every path: each step's edges, each stage's exit rule
(the path most leads take: engagement with the stage's content moves them on) and the
slowest case (a lead that never engages)."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
from engine.stages import STAGE_NAMES, JourneyStage


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
        test = ("<br/>A/B " + " / ".join(f"{v.id} {v.share} %" for v in step.send.variants)
                if step.send.variants else "")
        return "[", f"send {step.send.content}<br/>{step.send.template}{offer}{test}", "]"
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


@dataclass(frozen=True)
class StepBox:
    id: str
    kind: str                              # send | wait | branch | advance | goal | exit
    label: str
    edges: tuple[tuple[str, str], ...]     # (label, target step id); label "" = plain


@dataclass(frozen=True)
class StageBox:
    stage: str
    name: str
    steps: tuple[StepBox, ...]
    exit_rule: str | None                  # "1 click or download on INF content → BEF"
    exit_to: str | None                    # the target stage's first step


def _kind(step: Step) -> str:
    kinds: list[tuple[type, str]] = [(SendStep, "send"), (WaitStep, "wait"),
                                     (BranchStep, "branch"), (AdvanceStep, "advance"),
                                     (GoalStep, "goal")]
    return next((name for kind, name in kinds if isinstance(step, kind)), "exit")


def exit_rules(journey: CompiledJourney) -> dict[str, tuple[str, str]]:
    """Each stage's exit rule as the engine applies it: (text, target stage). A stage
    without its own rule moves on after one click or download on its content; the last
    declared stage without one has none (its leads wait for the MQL rule)."""
    declared = [stage for stage, _ in journey.model.stages.declared()]
    rules: dict[str, tuple[str, str]] = {}
    for position, (stage, plan) in enumerate(journey.model.stages.declared()):
        rule = plan.exit
        following = declared[position + 1] if position + 1 < len(declared) else None
        target = rule.to if rule and rule.to else following
        if target is None:
            continue
        events = "/".join(rule.events if rule else ["click", "download"])
        needed = rule.engaged if rule else 1
        rules[stage.value] = (f"{needed}× {events} on {stage.value} content", target.value)
    return rules


def boxes(journey: CompiledJourney) -> list[StageBox]:
    """The journey's stages and steps with every edge the engine follows."""
    rules = exit_rules(journey)
    stages: list[StageBox] = []
    for stage, plan in journey.model.stages.declared():
        steps = []
        for step in plan.steps:
            _, label, _ = _shape(step)
            if isinstance(step, BranchStep):
                edges = tuple((answer, target) for answer, target in (
                    ("yes", journey.target(step.id, step.branch.then)),
                    ("no", journey.target(step.id, step.branch.otherwise))) if target)
            else:
                edges = tuple(("", target) for target in journey.transitions.get(step.id, ()))
            steps.append(StepBox(step.id, _kind(step), label.replace("<br/>", " · "),
                                 tuple((a, t) for a, t in edges if t is not None)))
        rule = rules.get(stage.value)
        entry = journey.entry.get(JourneyStage(rule[1])) if rule else None
        stages.append(StageBox(stage.value, STAGE_NAMES[stage.value], tuple(steps),
                               f"{rule[0]} → {rule[1]}" if rule else None, entry))
    return stages


def slowest_case(journey: CompiledJourney) -> str:
    slowest = journey.model.slowest_case
    target = f"journey {slowest.move_to}" if slowest.move_to else "leave the journey"
    return f"slowest case: {format_duration(slowest.after)} without engagement → {target}"


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
    for from_stage, (text, target_stage) in exit_rules(journey).items():
        entry = journey.entry.get(JourneyStage(target_stage))
        if entry:
            lines.append(f'  {from_stage} -. "exit rule: {_text(text)}" .-> {_node(entry)}')
    lines.append(f'  slowest(["{_text(slowest_case(journey))}"])')
    first = journey.order[0] if journey.order else None
    if first:
        lines.append(f"  {_node(first)} -. never engages .-> slowest")
    return "\n".join(lines) + "\n"
