"""Journeys compiled into Prefect flows: ``journey:<id>@<version>``, a task per step.

Each task processes *all* due enrollments of its step in batches (never one task per
lead: a task run costs ~20 ms of Prefect server CPU). The structure comes from the
compiled journey, so the Prefect UI shows the same names as the YAML and `ripen graph`.
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, Task

from engine.config.compiler import CompiledJourney
from flows import runtime

JourneyFlow = Flow[[list[str]], dict[str, dict[str, int]]]
_compiled: dict[str, JourneyFlow] = {}


def _step_task(journey_id: str, step_id: str, stage: str) -> Task[[], dict[str, int]]:
    def run_step() -> dict[str, int]:
        ripen = runtime.current()
        journey = ripen.config.journeys[journey_id]
        return dict(ripen.journeys.run_step(journey, step_id).counts)

    return Task(run_step, name=f"{stage}:{step_id}", task_run_name=f"{stage}:{step_id}")


def _slowest_task(journey_id: str) -> Task[[], dict[str, int]]:
    def run_slowest_case() -> dict[str, int]:
        ripen = runtime.current()
        return dict(ripen.journeys.slowest_case(ripen.config.journeys[journey_id]).counts)

    return Task(run_slowest_case, name="slowest-case", task_run_name="slowest-case")


def journey_flow(journey: CompiledJourney) -> JourneyFlow:
    """The Prefect flow of one journey version (built once per process).

    Its parameter names the steps with due enrollments (the tick knows them from one
    indexed query); only their tasks run, in the journey's order, then the slowest case.
    """
    cached = _compiled.get(journey.name)
    if cached is not None:
        return cached
    steps = [(step_id, _step_task(journey.id, step_id, journey.stage_of[step_id].value))
             for step_id in journey.order]
    slowest = _slowest_task(journey.id)

    def run_journey(due_steps: list[str]) -> dict[str, dict[str, int]]:
        wanted = set(due_steps)
        results: dict[str, Any] = {step_id: step() for step_id, step in steps
                                   if step_id in wanted}
        results["slowest-case"] = slowest()
        return {k: v for k, v in results.items() if v}

    compiled = Flow(run_journey, name=journey.name, flow_run_name=journey.name,
                    log_prints=False)
    _compiled[journey.name] = compiled
    return compiled
