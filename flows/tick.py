"""The flows the scheduler runs: the frequent tick and the slower maintenance.

The tick runs each journey version with work as a flow of its own (``flows.journeys``), then
qualification, the handover webhooks and what is left of the outbox. A journey that fails
stays a failed flow run of its own: the others, qualification, webhooks and the outbox still
run in the same tick, and the tick ends ``Failed`` naming it (``run_tick`` raises
``TickFailed``). The tick's run name and its ``ripen-tick`` artifact summarise it; every
run is recorded in ripen's database too (``engine.runs``: what ``/health`` reads).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import State, StateType
from prefect.runtime import flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.states import Crashed, Failed

from engine import kept, quarantine, retention, runs
from engine.errors import RipenError
from engine.journeys import TickPlan
from flows import runtime
from flows.journeys import journey_flow, journey_runs
from flows.server import ensure_temporary_server

#: The summary of each flow run of this process, by flow run id, until ``run_tick`` or
#: ``run_maintenance`` picks it up (also when the run ended failed).
_summaries: dict[str, dict[str, Any]] = {}


class TickFailed(RipenError):
    """A tick (or maintenance run) ended with failed parts; the rest of it ran."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


@task(name="plan")
def plan_tick(now: datetime) -> TickPlan:
    """Which journey versions have work (two queries for all), never a task per lead."""
    return runtime.current().journeys.plan(now)


@task(name="send-mail")
def send_mail() -> dict[str, int]:
    """Drain the mail outbox: retries and anything not sent at once."""
    return dict(runtime.current().send_mail())


@task(name="qualify")
def qualify() -> int:
    """Score the leads marked since the last tick; hand over those the MQL rule now takes."""
    return len(runtime.current().handovers.qualify_due())


@task(name="send-webhooks")
def send_webhooks() -> dict[str, int]:
    """Signed handover webhooks: due deliveries and retries."""
    return dict(runtime.current().send_webhooks())


@task(name="sla-escalations")
def sla_escalations() -> int:
    """Handovers sales left unanswered past the agreed time: breach, webhook, mail."""
    return len(runtime.current().handovers.escalate_overdue())


@task(name="doi-reminders")
def doi_reminders() -> int:
    return len(runtime.current().consent.send_reminders())


@task(name="purge-unconfirmed")
def purge_unconfirmed() -> int:
    return runtime.current().consent.purge_unconfirmed()


@task(name="retention")
def purge_expired() -> dict[str, int]:
    """What config/retention.yaml's periods have passed for: mail bodies, click links,
    events, webhook payloads, erased people's consent proof, run records."""
    ripen = runtime.current()
    return retention.purge(ripen.uow, ripen.config.retention, ripen.clock())


@task(name="keep-funnel")
def keep_funnel() -> float:
    """The funnel report of the default period, kept for the workbench's funnel page (it
    counts every lead of the period: seconds on 100k leads, too slow for each page view).
    Returns the seconds it took."""
    ripen = runtime.current()
    with ripen.uow() as uow:
        return round(kept.keep_funnel(uow, ripen.clock(), ripen.monotonic).seconds, 3)


@task(name="orphaned-journey-runs")
def crash_orphaned_journey_runs() -> int:
    """Journey flow runs still Running under a tick that has ended — their worker died with
    them (the tick itself is marked Crashed by ``ripen deploy``'s heartbeat automation;
    journey runs send no heartbeats): marked Crashed, so the UI does not show them running
    forever. Returns how many."""
    crashed = 0
    with get_client(sync_client=True) as client:
        running = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(like_="journey:")),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.RUNNING]))), limit=200)
        for run in running:
            if run.parent_task_run_id is None:
                continue
            parent = client.read_flow_run(
                client.read_task_run(run.parent_task_run_id).flow_run_id)  # type: ignore[arg-type]
            if parent.state is not None and parent.state.is_final():
                client.set_flow_run_state(run.id, Crashed(
                    message=f"its tick ended {parent.state.name}: the worker died"), force=True)
                crashed += 1
    return crashed


@task(name="journey-versions")
def go_live() -> dict[str, object]:
    """New journey versions go live; `migrate` moves leads in flight."""
    added, moved = runtime.current().journeys.go_live()
    return {"live": added, "migrated": moved}


def _part(call: Any, what: str, failures: list[str]) -> Any:
    """Run a task as its own state: a failure is noted, and the flow goes on."""
    state = cast(State[Any], call(return_state=True))
    if state.is_completed():
        return state.result()
    failures.append(f"{what}: {state.message or state.name}")
    return None


@flow(name="ripen-tick", log_prints=False)
def tick_flow(now: datetime | None = None) -> Any:
    """What is due at ``now``; each journey version with work runs as its own flow (its
    mail goes out as each batch commits); then qualification, webhooks and the outbox."""
    ripen = runtime.current()
    at = now or ripen.clock()
    record = runs.started(ripen.uow, "tick", at)
    failures: list[str] = []
    versions = _part(go_live, "journey versions", failures) or {}
    plan = plan_tick(at)
    log = get_run_logger()
    for journey_id, since in sorted(plan.paused.items()):
        log.info("journey %s is paused (since %s): its steps wait", journey_id,
                 f"{since:%Y-%m-%d %H:%M}")
    for journey_id, version, why in plan.unknown:
        failures.append(f"journey {journey_id}@{version}: has due leads but cannot run ({why})")
    journeys: dict[str, dict[str, Any]] = {}
    with journey_runs():
        for work in plan.work:
            state = journey_flow(work.journey).run(work, at)
            name = f"{work.journey.id}@{work.journey.version}"
            if state.is_completed():
                journeys[name] = state.result()
            else:
                failures.append(f"journey {name}: {state.message or state.name}")
                journeys[name] = {"journey": work.journey.id,
                                  "version": work.journey.version,
                                  "failed": state.message or state.name}
    qualified = _part(qualify, "qualify", failures)
    hooks = _part(send_webhooks, "send-webhooks", failures)
    mail = _part(send_mail, "send-mail", failures)
    summary = {
        "at": at.isoformat(),
        "went_live": versions.get("live", []), "migrated": versions.get("migrated", 0),
        "due": [{"journey": w.journey.id, "version": w.journey.version, "step": step,
                 "due": count} for w in plan.work for step, count in w.due.items()],
        "journeys": journeys, "paused": sorted(plan.paused), "qualified": qualified,
        "webhooks": hooks, "mail": mail,
        "quarantined": quarantine.counts(ripen.uow), "failures": failures}
    _publish(summary, at)
    return _ended(record, summary, failures)


def _ended(record: int, summary: dict[str, Any], failures: list[str]) -> Any:
    """Record how the run ended; a run with failed parts ends ``Failed`` naming them."""
    ripen = runtime.current()
    runs.finished(ripen.uow, record, ripen.clock(), status="failed" if failures else "ok",
                  summary=summary, error="; ".join(failures) or None)
    _summaries[str(flow_run.id)] = summary
    if failures:
        return Failed(message="; ".join(failures)[:2000])
    return summary


def _totals(summary: dict[str, Any]) -> Counter[str]:
    total: Counter[str] = Counter()
    for journey in summary["journeys"].values():
        total.update(journey.get("counts", {}))
    return total


def _publish(summary: dict[str, Any], at: datetime) -> None:
    """The tick's run name and its ``ripen-tick`` artifact: what happened, in one line and
    one table."""
    total = _totals(summary)
    failed = len(summary["failures"])
    journeys = len(summary["journeys"])
    name = (f"tick · {at:%Y-%m-%d %H:%M} · {journeys} journey{'s' if journeys != 1 else ''} · "
            f"{total['sent']} sent" + (f" · {total['quarantined']} quarantined"
                                       if total["quarantined"] else "")
            + (f" · {failed} failed" if failed else ""))
    rows = ["| journey | sent | deferred | quarantined | advanced | left | state |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for key, journey in sorted(summary["journeys"].items()):
        counts = Counter(journey.get("counts", {}))
        left = counts["exited"] + counts["ended"] + counts["slowest_case"]
        rows.append(f"| {key} | {counts['sent']} | {counts['deferred']} | "
                    f"{counts['quarantined']} | {counts['advanced']} | {left} | "
                    f"{'failed: ' + journey['failed'] if 'failed' in journey else 'ok'} |")
    rows += [f"| {journey_id} | | | | | | paused |" for journey_id in summary["paused"]]
    quarantined = sum(summary["quarantined"].values())
    lines = [f"## Tick at {at:%Y-%m-%d %H:%M} UTC", "", *rows, "",
             f"Qualified: {summary['qualified']}; webhooks: {summary['webhooks']}; "
             f"outbox: {summary['mail']}.",
             f"Quarantined leads in all: {quarantined}"
             + (" (`ripen leads quarantined`)" if quarantined else "") + "."]
    if summary["failures"]:
        lines += ["", "**Failed:**", *[f"- {f}" for f in summary["failures"]]]
    create_markdown_artifact(key="ripen-tick", markdown="\n".join(lines),
                             description=name)
    with get_client(sync_client=True) as client:
        client.set_flow_run_name(flow_run.id, name)


@flow(name="ripen-maintenance", log_prints=False)
def maintenance_flow() -> Any:
    """DOI upkeep (one reminder, purge), SLA timers, then send what they queued; retention,
    orphaned journey runs, and the funnel report kept for the workbench."""
    ripen = runtime.current()
    record = runs.started(ripen.uow, "maintenance", ripen.clock())
    failures: list[str] = []
    summary = {"reminded": _part(doi_reminders, "doi-reminders", failures),
               "purged": _part(purge_unconfirmed, "purge-unconfirmed", failures),
               "escalated": _part(sla_escalations, "sla-escalations", failures),
               "webhooks": _part(send_webhooks, "send-webhooks", failures),
               "mail": _part(send_mail, "send-mail", failures),
               "retention": _part(purge_expired, "retention", failures),
               "orphaned_journey_runs": _part(crash_orphaned_journey_runs,
                                              "orphaned-journey-runs", failures),
               "funnel_seconds": _part(keep_funnel, "keep-funnel", failures),
               "failures": failures}
    _publish_maintenance(summary, ripen.clock())
    return _ended(record, summary, failures)


def _publish_maintenance(summary: dict[str, Any], at: datetime) -> None:
    """The maintenance run's ``ripen-maintenance`` artifact: what it did, and what each
    retention class purged."""
    purged = summary.get("retention") or {}
    lines = [f"## Maintenance at {at:%Y-%m-%d %H:%M} UTC", "",
             f"DOI reminders {summary['reminded']}, unconfirmed sign-ups purged "
             f"{summary['purged']}, SLA escalations {summary['escalated']}, webhooks "
             f"{summary['webhooks']}, outbox {summary['mail']}"
             + (f"; funnel report kept in {summary['funnel_seconds']} s."
                if summary["funnel_seconds"] is not None else "."), "",
             "| retention class | purged |", "| --- | ---: |",
             *[f"| {name} | {count} |" for name, count in purged.items()]]
    if summary["failures"]:
        lines += ["", "**Failed:**", *[f"- {f}" for f in summary["failures"]]]
    create_markdown_artifact(key="ripen-maintenance", markdown="\n".join(lines),
                             description=f"maintenance · {at:%Y-%m-%d %H:%M}")


@contextmanager
def no_heartbeats() -> Iterator[None]:
    """Flow heartbeats cost ~1 s at every flow exit; frequent ticks switch them off."""
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _outcome(result: object) -> dict[str, Any]:
    state = cast(State[Any], result)
    summary = _summaries.pop(str(state.state_details.flow_run_id), {})
    if state.is_completed():
        return summary
    raise TickFailed(state.message or state.name or "failed", summary)


def run_tick(now: datetime | None = None) -> dict[str, Any]:
    """One tick, as the scheduler and ``ripen tick`` run it: its summary, or ``TickFailed``
    (with the summary of what did run) when a part of it failed."""
    ensure_temporary_server()
    with no_heartbeats():
        return _outcome(tick_flow(now, return_state=True))


def run_maintenance() -> dict[str, Any]:
    ensure_temporary_server()
    with no_heartbeats():
        return _outcome(maintenance_flow(return_state=True))
