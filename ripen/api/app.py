"""The FastAPI application, built around an already bootstrapped ``Ripen``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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


def _runtime(ripen_app: Ripen, started: datetime) -> dict[str, Any]:
    """The last tick (ripen's own record: in every mode), paused journeys and quarantined
    leads, and the problems they make."""
    from engine import quarantine, runs

    now = ripen_app.clock()
    interval = timedelta(seconds=ripen_app.settings.tick_seconds)
    last = runs.last(ripen_app.uow, "tick")
    held = quarantine.counts(ripen_app.uow)
    problems = []
    if last is not None and last.status == "failed":
        problems.append(f"the last tick failed: {last.error}")
    since = last.started_at if last is not None else started
    if now - since > 3 * interval:
        problems.append(f"no tick for {_ago(now - since)} (ticks every "
                        f"{interval.total_seconds():.0f} s)")
    if held:
        problems.append(f"{sum(held.values())} leads quarantined ("
                        + ", ".join(f"{j} {n}" for j, n in sorted(held.items()))
                        + "): ripen leads quarantined")
    found: dict[str, Any] = {
        "last_tick": None if last is None else {
            "started_at": last.started_at.isoformat(),
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
            "status": last.status, "error": last.error},
        "quarantined": held, "paused_journeys": sorted(ripen_app.journeys.paused()),
        "problems": problems}
    if problems:
        found["status"] = "degraded"
    return found


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def create_app(ripen_app: Ripen, scheduler: SchedulerStatus | None = None) -> FastAPI:
    app = FastAPI(title="ripen", version=ripen.__version__,
                  description="B2B lead nurturing: consent, journeys, handover to sales.")
    status = scheduler or SchedulerStatus()

    from ripen.api import (
        consent,
        handover,
        metrics,
        operations,
        profile,
        reports,
        tracking,
        workbench,
    )

    app.add_middleware(Guard, keys=ripen_app.settings.api_keys)  # before any body is read
    app.include_router(consent.router(ripen_app))
    app.include_router(handover.router(ripen_app))
    app.include_router(metrics.router(ripen_app))
    app.include_router(operations.router(ripen_app))
    app.include_router(profile.router(ripen_app))
    app.include_router(reports.router(ripen_app))
    app.include_router(tracking.router(ripen_app))
    app.include_router(workbench.router(ripen_app))

    @app.exception_handler(RipenError)
    async def _user_error(_: Request, exc: RipenError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    started = ripen_app.clock()

    def checked() -> dict[str, Any]:
        """What /health shows: ``ok``, ``degraded`` (naming each problem) or
        ``unavailable`` (the database does not answer)."""
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
            "signing_keys": ripen_app.signing_keys,
        }
        if ripen_app.signing_keys == "generated":
            body["warnings"] = [GENERATED_KEY_WARNING]
        try:
            database.ping(ripen_app.db)
            body["database"] = "ok"
            body["schema"] = database.current_revision(ripen_app.db)
            body.update(_runtime(ripen_app, started))
        except SQLAlchemyError as exc:
            log.warning("health: database unreachable: %s", exc)
            body["status"] = "unavailable"
            body["database"] = "unreachable"
        return body

    @app.get("/health", tags=["operations"])
    def health() -> JSONResponse:
        """Database reachable, schema current, config loaded, and how the ticks go: 200 with
        ``ok`` or ``degraded`` (the problems named: the last tick failed, no tick for three
        intervals, quarantined leads); 503 when the database is unreachable."""
        body = checked()
        return JSONResponse(body, status_code=503 if body["status"] == "unavailable" else 200)

    @app.get("/health/live", tags=["operations"])
    def live() -> JSONResponse:
        """Liveness: the process answers (restart it when this fails)."""
        return JSONResponse({"status": "ok"})

    @app.get("/health/ready", tags=["operations"])
    def ready() -> JSONResponse:
        """Readiness: 200 only when /health says ``ok``; 503 with the problems otherwise."""
        body = checked()
        return JSONResponse({k: body[k] for k in ("status", "problems") if k in body},
                            status_code=200 if body["status"] == "ok" else 503)

    return app
