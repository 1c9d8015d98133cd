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
                              tags=["ripen"], description=description)
    assert isinstance(made, RunnerDeployment)  # to_deployment is sync outside an event loop
    return Registered(f"{flow.name}/{name}", every, str(made.apply(work_pool_name=pool)))


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
