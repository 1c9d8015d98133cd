"""The flows the scheduler runs: the frequent tick and the slower maintenance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from engine.store.database import session
from engine.store.enrollments import due_steps
from flows import runtime
from flows.journeys import journey_tasks
from flows.server import ensure_temporary_server


@task(name="due-steps")
def find_due_steps(now: datetime) -> list[dict[str, object]]:
    """One query over all due enrollments (a batch), never one task per lead."""
    with session(runtime.current().db) as db:
        return [
            {"journey": d.journey_id, "version": d.journey_version, "step": d.step_id,
             "due": d.count}
            for d in due_steps(db, now=now)
        ]


def active_journeys() -> set[str]:
    with runtime.current().uow() as uow:
        return uow.journeys_with_active()


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


@task(name="journey-versions")
def go_live() -> dict[str, object]:
    """New journey versions go live; `migrate` moves leads in flight."""
    added, moved = runtime.current().journeys.go_live()
    return {"live": added, "migrated": moved}


@flow(name="ripen-tick", log_prints=False)
def tick_flow(now: datetime | None = None) -> list[dict[str, object]]:
    """What is due at ``now``; each journey version's tasks run its due steps (sending their
    mail as each batch commits); qualification, webhooks and what is left of the outbox."""
    ripen = runtime.current()
    go_live()
    due = find_due_steps(now or ripen.clock())
    active = active_journeys()
    versions = {(str(row["journey"]), str(row["version"])) for row in due}
    versions |= {(j.id, j.version) for j in ripen.config.journeys.values() if j.id in active}
    with ripen.uow() as uow:
        compiled = [ripen.journeys.versions.get(uow, j, v) for j, v in sorted(versions)]
    for journey in compiled:
        if journey is None:
            continue
        steps = [str(row["step"]) for row in due
                 if row["journey"] == journey.id and row["version"] == journey.version]
        journey_tasks(journey).run(steps)
    qualify()
    send_webhooks()
    send_mail()
    return due


@flow(name="ripen-maintenance", log_prints=False)
def maintenance_flow() -> dict[str, Any]:
    """DOI upkeep (one reminder, purge), SLA timers, then send what they queued."""
    reminded = doi_reminders()
    purged = purge_unconfirmed()
    escalated = sla_escalations()
    hooks = send_webhooks()
    sent = send_mail()
    return {"reminded": reminded, "purged": purged, "escalated": escalated,
            "webhooks": hooks, "mail": sent}


@contextmanager
def no_heartbeats() -> Iterator[None]:
    """Flow heartbeats cost ~1 s at every flow exit; frequent ticks switch them off."""
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def run_tick(now: datetime | None = None) -> list[dict[str, object]]:
    """One tick, as the scheduler and ``ripen tick`` run it."""
    ensure_temporary_server()
    with no_heartbeats():
        return tick_flow(now)


def run_maintenance() -> dict[str, Any]:
    ensure_temporary_server()
    with no_heartbeats():
        return maintenance_flow()
