"""Operations: the database's migrations and deployment mode (deploy, workers, the API)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

import ripen
from engine import redact
from ripen import logs
from ripen.cli._common import (
    DEFAULT_POOL,
    PoolOption,
    app,
    db_app,
    deployment_settings,
    load_cli_settings,
    out,
    prefect_server,
)
from ripen.cli.output import JsonOption, print_json


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to RIPEN_DATABASE_URL (ripen run does this on start)."""
    from engine.store import database

    settings = load_cli_settings()
    engine = database.make_engine(settings.effective_database_url)
    try:
        database.upgrade(engine)
        out.print(f"database at revision {database.current_revision(engine)}")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current(as_json: JsonOption = False) -> None:
    """Show the database's migration revision and the newest one available."""
    from engine.store import database

    engine = database.make_engine(load_cli_settings().effective_database_url)
    try:
        current, head = database.current_revision(engine), database.head_revision()
    finally:
        engine.dispose()
    if as_json:
        print_json({"current": current, "head": head, "up_to_date": current == head})
        return
    out.print(f"current: {current or 'none'}, head: {head}"
              + ("" if current == head else " — run `ripen db upgrade`"), markup=False)


@app.command()
def deploy(pool: PoolOption = DEFAULT_POOL) -> None:
    """Deployment mode: validate, migrate, and register the tick and maintenance flows as
    Prefect deployments on a process work pool (created if missing). Schedules come from
    RIPEN_TICK_SECONDS and RIPEN_MAINTENANCE_SECONDS; run it again after changing them."""
    settings = deployment_settings()
    url = prefect_server()
    from engine.bootstrap import bootstrap

    ripen_app = bootstrap(settings)  # the configuration is valid and the schema current
    ripen_app.dispose()
    from flows.deployments import CRASH_AUTOMATION, ensure_crash_automation, ensure_pool, register

    created = ensure_pool(pool)
    out.print(f"work pool {pool}: {'created' if created else 'exists'} (process) on {url}")
    made = ensure_crash_automation()
    out.print(f"automation {CRASH_AUTOMATION!r}: {made} (flow runs "
              "send heartbeats; a run whose worker died becomes Crashed)", markup=False)
    for registered in register(settings, pool=pool):
        out.print(f"deployment {registered.name}: every {registered.every}  "
                  f"(id {registered.deployment_id})", markup=False)
    out.print(f"next: start workers with `ripen worker --pool {pool}` and the API with "
              "`ripen serve`", markup=False)


@app.command()
def worker(
    pool: PoolOption = DEFAULT_POOL,
    limit: Annotated[int, typer.Option(min=1, help="Flow runs this worker runs at once")] = 4,
    name: Annotated[str | None, typer.Option(help="Worker name shown by Prefect")] = None,
) -> None:
    """Deployment mode: check the settings, configuration and database, then become a Prefect
    process worker on the pool; each tick or maintenance run is a fresh process."""
    settings = deployment_settings()
    prefect_server()
    from engine.bootstrap import bootstrap_migrated

    bootstrap_migrated(settings).dispose()
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
               "--type", "process", "--limit", str(limit)]
    if name:
        command += ["--name", name]
    sys.stdout.flush()
    os.execv(sys.executable, command)  # noqa: S606 - fixed argv, no shell


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address the API listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API processes")] = 2,
) -> None:
    """Deployment mode: serve the HTTP API alone, in several processes (uvicorn); no
    scheduler here, the ticks run on Prefect workers. The database must be migrated."""
    settings = deployment_settings()
    import uvicorn

    from engine.bootstrap import bootstrap_migrated

    bootstrap_migrated(settings).dispose()
    out.print(f"ripen {ripen.__version__} API on {host}:{port} ({workers} processes), "
              f"database {redact.url(settings.effective_database_url)}", markup=False)
    uvicorn.run("ripen.api.asgi:create", factory=True, host=host, port=port, workers=workers,
                log_level="info", proxy_headers=False,
                log_config=logs.uvicorn_config(settings.log_format))
