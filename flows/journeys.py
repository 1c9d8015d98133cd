"""Journeys compiled into Prefect flows: one flow per journey, ``journey:<id>``, run as a
subflow of the tick for each journey version that has work, its steps as tasks.

What the Prefect UI then shows an operator (the names come from the compiled journey, as in
the YAML and ``ripen graph``):

- a flow run per journey version and tick, named ``<id>@<version> · 2026-12-03 07:07``,
  tagged ``journey:<id>``, ``persona:<id>`` and ``kind:<kind>``;
- a task run per due step, ``journey:<id>@<version> <stage>:<step>``, which returns and logs
  its counts (sent, deferred and why, moved, advanced, ended, quarantined and why);
- a table artifact per journey (key ``journey-<id>``: its history is the journey's history
  tick by tick) with a row per step, and a markdown summary as its description.

Steps work in batches, never a task per lead (a task run costs ~20 ms of Prefect server CPU).
A step's exception fails its journey's flow run only; the tick goes on with the others.
The step tasks run without tags (Prefect asks its server for a concurrency slot for every
tag of every task run), so the journey's tags are set on its flow run alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect import Flow, Task, flow, get_run_logger, tags
from prefect.artifacts import create_table_artifact
from prefect.context import TagsContext
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from engine.config.compiler import CompiledJourney
from engine.journeys import JourneyWork, StepReport
from flows import runtime

#: What a step task returns: counts by outcome, mail by result, and why (deferred, …).
StepResult = dict[str, dict[str, int]]
StepTask = Task[[], StepResult]
#: Columns of the journey's table artifact, in this order; other outcomes go to "other".
COLUMNS = ("due", "sent", "deferred", "quarantined", "moved", "advanced", "branch_yes",
           "branch_no", "waiting", "exited", "ended", "slowest_case", "skipped_already_sent")


def result_of(report: StepReport) -> StepResult:
    return {"counts": dict(report.counts), "mail": dict(report.mail), "why": dict(report.why)}


def artifact_key(journey_id: str) -> str:
    """Prefect artifact keys take lower-case letters, digits and dashes."""
    return "journey-" + re.sub(r"[^a-z0-9-]+", "-", journey_id.lower()).strip("-")


def run_name(journey: CompiledJourney, at: datetime) -> str:
    return f"{journey.id}@{journey.version} · {at:%Y-%m-%d %H:%M}"


def journey_tags(journey: CompiledJourney) -> list[str]:
    model = journey.model
    found = [f"journey:{journey.id}", f"kind:{model.kind}"]
    if model.persona:
        found.append(f"persona:{model.persona}")
    return found


def describe(result: StepResult) -> str:
    """One log line: ``sent 812, deferred 3 (quiet_hours 3), quarantined 1``."""
    counts = Counter(result["counts"])
    parts = [f"{name} {n}" for name, n in counts.most_common() if n]
    why = result.get("why") or {}
    if why:
        parts.append("; ".join(f"{reason} ×{n}" for reason, n in
                               Counter(why).most_common(5)))
    mail = result.get("mail") or {}
    if mail:
        parts.append("mail " + ", ".join(f"{k} {v}" for k, v in sorted(mail.items())))
    return ", ".join(parts) or "nothing due"


def _table(journey: CompiledJourney, due: dict[str, int],
           results: dict[str, StepResult]) -> list[dict[str, Any]]:
    rows = []
    for step_id, result in results.items():
        counts = Counter(result["counts"])
        stage = journey.stage_of[step_id].value if step_id in journey.stage_of else "-"
        row: dict[str, Any] = {"stage": stage, "step": step_id, "due": due.get(step_id, 0)}
        row.update({name: counts.pop(name, 0) for name in COLUMNS if name != "due"})
        row["other"] = ", ".join(f"{k} {v}" for k, v in counts.items()) or ""
        row["why"] = "; ".join(f"{k} ×{v}" for k, v in result.get("why", {}).items())
        rows.append(row)
    return rows


def summary(journey: CompiledJourney, results: dict[str, StepResult]) -> dict[str, Any]:
    """The journey's totals this tick (what the tick's own artifact shows per journey)."""
    total: Counter[str] = Counter()
    why: Counter[str] = Counter()
    for result in results.values():
        total.update(result["counts"])
        why.update(result.get("why", {}))
    return {"journey": journey.id, "version": journey.version,
            "steps": len(results), "counts": dict(total), "why": dict(why)}


def _markdown(journey: CompiledJourney, at: datetime, totals: dict[str, Any]) -> str:
    counts = Counter(totals["counts"])
    lines = [f"### Journey {journey.model.name or journey.id} ({journey.id}@{journey.version})",
             "", f"Tick at {at:%Y-%m-%d %H:%M} UTC: **{counts['sent']} sent**, "
             f"{counts['deferred']} deferred, {counts['quarantined']} quarantined, "
             f"{counts['advanced']} advanced to the next stage, "
             f"{counts['exited'] + counts['ended'] + counts['slowest_case']} left the journey."]
    quarantined = {k: v for k, v in totals["why"].items() if k.startswith("quarantined")}
    if quarantined:
        lines += ["", "**Quarantined** (fix, then `ripen leads retry --journey "
                  f"{journey.id}`):", ""]
        lines += [f"- {reason.removeprefix('quarantined: ')} ×{n}"
                  for reason, n in quarantined.items()]
    deferred = {k: v for k, v in totals["why"].items() if k.startswith("deferred")}
    if deferred:
        lines += ["", "Deferred by the contact policy: " + ", ".join(
            f"{k.removeprefix('deferred: ')} {v}" for k, v in deferred.items())]
    return "\n".join(lines)


@dataclass(frozen=True)
class JourneyFlow:
    """One journey version's flow and its step tasks (built once per process)."""

    journey: CompiledJourney
    flow: Flow[[dict[str, int], bool, datetime], dict[str, Any]]

    def run(self, work: JourneyWork, at: datetime) -> Any:
        """The journey's flow run for this tick, as a Prefect state (a failure stays in it:
        the caller goes on with the other journeys). Call it inside ``journey_runs()``."""
        named = self.flow.with_options(flow_run_name=run_name(self.journey, at))
        with tags(*journey_tags(self.journey)):
            return named(work.due, work.slowest_case, at, return_state=True)


@contextmanager
def journey_runs() -> Iterator[None]:
    """Where the tick runs its journeys: without heartbeats of their own (the tick's tell a
    dead worker, and a journey's would make it wait up to a second at its end). Entered
    once per tick, not per journey: Prefect copies its whole settings object for it (~40 ms
    of the tick's own CPU each time)."""
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


_flows: dict[str, JourneyFlow] = {}


def _task(name: str, fn: Callable[[], StepResult]) -> StepTask:
    return Task(fn, name=name, task_run_name=name)


def journey_flow(journey: CompiledJourney) -> JourneyFlow:
    """The Prefect flow of one journey version (built once per process)."""
    cached = _flows.get(journey.name)
    if cached is not None:
        return cached
    journey_id = journey.id

    def step_runner(step_id: str) -> Callable[[], StepResult]:
        def run_step() -> StepResult:
            result = result_of(runtime.current().journeys.run_step(journey, step_id))
            get_run_logger().info("%s: %s", step_id, describe(result))
            return result
        return run_step

    def run_slowest_case() -> StepResult:
        ripen = runtime.current()
        result = result_of(ripen.journeys.slowest_case(ripen.config.journeys[journey_id]))
        get_run_logger().info("slowest case: %s", describe(result))
        return result

    steps = {step_id: _task(f"{journey.name} {journey.stage_of[step_id].value}:{step_id}",
                            step_runner(step_id)) for step_id in journey.order}
    slowest = _task(f"{journey.name} slowest-case", run_slowest_case)

    def run_journey(due: dict[str, int], slowest_case: bool, at: datetime) -> dict[str, Any]:
        results: dict[str, StepResult] = {}
        with TagsContext(current_tags=set()):  # the flow run has the tags; tasks none
            for step_id in _in_order(journey, due):
                results[step_id] = steps[step_id]()
            if slowest_case:
                results["slowest-case"] = slowest()
        totals = summary(journey, results)
        # one artifact (one call to the server): the table of steps, the summary in markdown
        # as its description, which the UI shows above the table
        create_table_artifact(key=artifact_key(journey_id),
                              table=_table(journey, due, results),
                              description=_markdown(journey, at, totals))
        return totals

    made = JourneyFlow(journey, flow(name=f"journey:{journey_id}", log_prints=False,
                                     description=journey.model.description or
                                     f"journey {journey_id}")(run_journey))
    _flows[journey.name] = made
    return made


def _in_order(journey: CompiledJourney, due: Iterable[str]) -> list[str]:
    wanted = set(due)
    return [step_id for step_id in journey.order if step_id in wanted]


__all__ = ["JourneyFlow", "JourneyWork", "artifact_key", "describe", "journey_flow",
           "journey_runs", "journey_tags", "run_name", "summary"]
