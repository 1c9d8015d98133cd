"""The API alone, for ``ripen serve`` (and any ASGI server): ``ripen.api.asgi:create``.

Each server worker process builds its own ``Ripen`` from the ``RIPEN_*`` settings; the
database must already be migrated (``ripen deploy`` or ``ripen db upgrade`` does it). No
scheduler runs here: in deployment mode the ticks are Prefect flow runs on the workers.
"""

from __future__ import annotations

from fastapi import FastAPI

from engine.bootstrap import bootstrap_migrated
from ripen.api.app import SchedulerStatus, create_app


def create() -> FastAPI:
    return create_app(bootstrap_migrated(), SchedulerStatus(mode="prefect-workers"))
