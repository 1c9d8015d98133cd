"""Deployment mode: the tick and maintenance flows as Prefect deployments on a work pool.

``ripen deploy`` registers them (schedules from ``RIPEN_TICK_SECONDS`` and
``RIPEN_MAINTENANCE_SECONDS``) with a Prefect server; ``ripen worker`` starts a Prefect
process worker that runs each flow run in a fresh process built from the ``RIPEN_*``
settings. Any number of workers may poll the pool: ticks that overlap are safe, because due
steps, mails and webhook deliveries are claimed row by row (``FOR UPDATE SKIP LOCKED``,
leases), so each side effect happens once whichever worker gets there first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect import Flow, get_client
from prefect.automations import Automation
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import StateType
from prefect.deployments.runner import RunnerDeployment
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType
from prefect.workers.process import ProcessWorker

from engine.errors import RipenError
from engine.settings import Settings
from flows.tick import maintenance_flow, tick_flow


@dataclass(frozen=True)
class Registered:
    name: str            # flow/deployment, as `prefect deployment run` takes it
    every: timedelta
    deployment_id: str


def ensure_pool(name: str) -> bool:
    """Create the process work pool ``name`` unless it exists; True when it was created.

    An existing pool of another type is refused: its workers would not run our flows in a
    local process with the ``RIPEN_*`` settings."""
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(
                name=name, type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
                description="ripen: tick and maintenance flow runs"))
            return True
    if pool.type != "process":
        raise RipenError(f'work pool "{name}" is of type {pool.type}; ripen needs a process '
                         "pool (choose another name with --pool)")
    return False


def _register(flow: Flow[..., Any], name: str, every: timedelta, description: str,
              pool: str) -> Registered:
    """Register one deployment that imports the flow by module path: the workers run the
    installed ripen (no image, no code storage to pull)."""
    made = flow.to_deployment(name, interval=every, entrypoint_type=EntrypointType.MODULE_PATH,
                              tags=["ripen"], description=description,
                              job_variables={"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY":
                                                     str(HEARTBEAT.seconds)}})
    assert isinstance(made, RunnerDeployment)  # to_deployment is sync outside an event loop
    return Registered(f"{flow.name}/{name}", every, str(made.apply(work_pool_name=pool)))


#: How often a deployment's flow run says it is alive (Prefect's minimum), and how long
#: silence makes it crashed: a worker killed mid-run leaves its run Running otherwise.
HEARTBEAT = timedelta(seconds=30)
SILENCE = timedelta(seconds=90)
CRASH_AUTOMATION = "ripen: crash flow runs whose worker died"


def ensure_crash_automation() -> str:
    """The Prefect automation that marks a tick or maintenance run crashed when its worker
    died: "created", "updated" (an older ripen's version replaced) or "exists". The journey
    flows inside a tick send no heartbeats of their own (each would wait up to a second at
    its end) and are not watched; the maintenance run settles them."""
    return asyncio.run(_ensure_crash_automation())


def crash_automation(silence: timedelta = SILENCE) -> Automation:
    """Armed when a worker takes a run (Pending), when the run starts (the server's own
    Running event, which a kill -9 cannot lose — the run's first heartbeat can be) and at
    every heartbeat; fires when neither a start, another heartbeat nor an end follows within
    ``silence``. A worker killed between taking a run and starting it left it Pending."""
    return Automation(
        name=CRASH_AUTOMATION,
        description="A ripen tick or maintenance run that a worker took but did not start, "
                    f"or that stopped sending heartbeats, for {silence.seconds} s (its "
                    "worker died) becomes Crashed.",
        trigger=EventTrigger(
            after={"prefect.flow-run.Pending", "prefect.flow-run.Running",
                   "prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.Running", "prefect.flow-run.heartbeat",
                    "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            match_related={"prefect.resource.role": "flow",
                           "prefect.resource.name": [tick_flow.name, maintenance_flow.name]},
            for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
            within=silence),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no start or heartbeat for {silence.seconds} s: "
                                            "its worker died")],
    )


def _shape(automation: Automation) -> object:
    """What the automation does, without the ids the server gives its parts. Dumped as
    Python values, not JSON: the trigger's event sets stay sets (as JSON lists their order
    follows the process's string hashing, and an automation read back could differ from the
    same one built here — `ripen deploy` then "updated" an unchanged one)."""
    return (automation.trigger.model_dump(exclude={"id"}),
            [action.model_dump() for action in automation.actions],
            automation.description)


async def _ensure_crash_automation() -> str:
    wanted = crash_automation()
    try:
        there = await Automation.aread(name=CRASH_AUTOMATION)
    except ValueError:  # not there yet
        await wanted.acreate()
        return "created"
    if _shape(there) == _shape(wanted):
        return "exists"
    there.trigger, there.actions = wanted.trigger, wanted.actions
    there.description = wanted.description
    await there.aupdate()
    return "updated"


def register(settings: Settings, *, pool: str) -> list[Registered]:
    """Register (or update) both deployments on ``pool``; their schedules replace any old."""
    return [
        _register(tick_flow, "tick", timedelta(seconds=settings.tick_seconds),
                  "What is due now: journey steps, MQL check, handover webhooks and the mail "
                  "outbox.", pool),
        _register(maintenance_flow, "maintenance",
                  timedelta(seconds=settings.maintenance_seconds),
                  "DOI reminders and purge, SLA escalations, retries.", pool),
    ]
