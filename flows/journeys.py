"""Journeys compiled into Prefect tasks of the tick flow: a task per step, named
``journey:<id>@<version> <stage>:<step>``.

Each task processes *all* due enrollments of its step in batches (never one task per
lead: a task run costs ~20 ms of Prefect server CPU). The structure comes from the
compiled journey, so the Prefect UI shows the same names as the YAML and `ripen graph`.
A journey is not a flow run of its own: a subflow costs ~140 ms of synchronous API calls
per tick (seconds with the embedded server's SQLite database), against ~8 ms for a task.
The tasks carry no tags: Prefect asks its server for a concurrency slot for every tag of
every task run, seconds per tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prefect import Task

from engine.config.compiler import CompiledJourney
from flows import runtime

StepTask = Task[[], dict[str, int]]


@dataclass(frozen=True)
class JourneyTasks:
    """One journey version's tasks: its steps in the journey's order, then the slowest case."""

    name: str
    steps: tuple[tuple[str, StepTask], ...]
    slowest_case: StepTask

    def run(self, due_steps: list[str]) -> dict[str, dict[str, int]]:
        """The tasks of the steps with due enrollments (the tick knows them from one
        indexed query), in the journey's order, then the slowest case."""
        wanted = set(due_steps)
        results = {step_id: step() for step_id, step in self.steps if step_id in wanted}
        results["slowest-case"] = self.slowest_case()
        return {k: v for k, v in results.items() if v}


_compiled: dict[str, JourneyTasks] = {}


def _task(name: str, fn: Callable[[], dict[str, int]]) -> StepTask:
    return Task(fn, name=name, task_run_name=name)


def journey_tasks(journey: CompiledJourney) -> JourneyTasks:
    """The Prefect tasks of one journey version (built once per process)."""
    cached = _compiled.get(journey.name)
    if cached is not None:
        return cached
    journey_id = journey.id

    def step_runner(step_id: str) -> Callable[[], dict[str, int]]:
        def run_step() -> dict[str, int]:
            ripen = runtime.current()
            return dict(ripen.journeys.run_step(ripen.config.journeys[journey_id],
                                                step_id).counts)
        return run_step

    def run_slowest_case() -> dict[str, int]:
        ripen = runtime.current()
        return dict(ripen.journeys.slowest_case(ripen.config.journeys[journey_id]).counts)

    compiled = JourneyTasks(
        name=journey.name,
        steps=tuple((step_id, _task(f"{journey.name} {journey.stage_of[step_id].value}:"
                                    f"{step_id}", step_runner(step_id)))
                    for step_id in journey.order),
        slowest_case=_task(f"{journey.name} slowest-case", run_slowest_case))
    _compiled[journey.name] = compiled
    return compiled
