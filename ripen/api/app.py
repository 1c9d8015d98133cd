"""The FastAPI application, built around an already bootstrapped ``Ripen``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

import ripen
from engine.bootstrap import GENERATED_KEY_WARNING, Ripen
from engine.errors import RipenError
from engine.store import database
from ripen.api.guard import Guard

log = logging.getLogger("ripen.api")


@dataclass
class SchedulerStatus:
    """What the scheduler last did; shown on ``/health``."""

    running: bool = False
    #: "embedded" (this process ticks) or "prefect-workers" (ticks are deployment runs)
    mode: str = "embedded"
    last_tick_at: datetime | None = None
    last_tick_error: str | None = None
    due: list[dict[str, object]] = field(default_factory=list)


def create_app(ripen_app: Ripen, scheduler: SchedulerStatus | None = None) -> FastAPI:
    app = FastAPI(title="ripen", version=ripen.__version__,
                  description="B2B lead nurturing: consent, journeys, handover to sales.")
    status = scheduler or SchedulerStatus()

    from ripen.api import consent, handover, operations, profile, reports, tracking

    app.add_middleware(Guard, keys=ripen_app.settings.api_keys)  # before any body is read
    app.include_router(consent.router(ripen_app))
    app.include_router(handover.router(ripen_app))
    app.include_router(operations.router(ripen_app))
    app.include_router(profile.router(ripen_app))
    app.include_router(reports.router(ripen_app))
    app.include_router(tracking.router(ripen_app))

    @app.exception_handler(RipenError)
    async def _user_error(_: Request, exc: RipenError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.get("/health", tags=["operations"])
    def health() -> JSONResponse:
        """Liveness and readiness: database reachable, schema current, config loaded."""
        body: dict[str, Any] = {
            "status": "ok",
            "version": ripen.__version__,
            "config_version": ripen_app.config.version,
            "journeys": {j.id: j.version for j in ripen_app.config.journeys.values()},
            "scheduler": {
                "mode": status.mode,
                "running": status.running,
                "last_tick_at": status.last_tick_at.isoformat() if status.last_tick_at else None,
                "last_tick_error": status.last_tick_error,
            },
        }
        body["signing_keys"] = ripen_app.signing_keys
        if ripen_app.signing_keys == "generated":
            body["warnings"] = [GENERATED_KEY_WARNING]
        try:
            database.ping(ripen_app.db)
            body["database"] = "ok"
            body["schema"] = database.current_revision(ripen_app.db)
        except SQLAlchemyError as exc:
            log.warning("health: database unreachable: %s", exc)
            body["status"] = "unavailable"
            body["database"] = "unreachable"
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    return app
