"""Deployment mode: the tick and maintenance flows as Prefect deployments on a work pool.

``ripen deploy`` registers them (schedules from ``RIPEN_TICK_SECONDS`` and
``RIPEN_MAINTENANCE_SECONDS``) with a Prefect server; ``ripen worker`` starts a Prefect
process worker that runs each flow run in a fresh process built from the ``RIPEN_*``
settings. Any number of workers may poll the pool: ticks that overlap are safe, because due
steps, mails and webhook deliveries are claimed row by row (``FOR UPDATE SKIP LOCKED``,
leases), so each side effect happens once whichever worker gets there first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect import Flow, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType
from prefect.workers.process import ProcessWorker

from engine.errors import RipenError
from engine.settings import Settings
from flows.tick import maintenance_flow, tick_flow

DEFAULT_POOL = "ripen"


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


def _deployment(flow: Flow[..., Any], name: str, every: timedelta,
                description: str) -> RunnerDeployment:
    """A deployment that imports the flow by module path: the workers run the installed
    ripen (no image, no code storage to pull)."""
    made = flow.to_deployment(name, interval=every, entrypoint_type=EntrypointType.MODULE_PATH,
                              tags=["ripen"], description=description)
    assert isinstance(made, RunnerDeployment)  # to_deployment is sync outside an event loop
    return made


def register(settings: Settings, *, pool: str = DEFAULT_POOL) -> list[Registered]:
    """Register (or update) both deployments on ``pool``; their schedules replace any old."""
    every = {"tick": timedelta(seconds=settings.tick_seconds),
             "maintenance": timedelta(seconds=settings.maintenance_seconds)}
    deployments = [
        _deployment(tick_flow, "tick", every["tick"], "What is due now: journey steps, MQL "
                    "check, handover webhooks and the mail outbox."),
        _deployment(maintenance_flow, "maintenance", every["maintenance"],
                    "DOI reminders and purge, SLA escalations, retries."),
    ]
    ids = [deployment.apply(work_pool_name=pool) for deployment in deployments]
    names = [f"{tick_flow.name}/tick", f"{maintenance_flow.name}/maintenance"]
    return [Registered(name, every[name.rsplit("/", 1)[1]], str(deployment_id))
            for name, deployment_id in zip(names, ids, strict=True)]
