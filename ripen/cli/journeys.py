"""Journeys and ticks: run a tick (at a time of one's choosing), run ripen, see what a
journey change would move, pause and resume journeys, the maintenance run."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

import ripen
from engine import redact
from engine.errors import RipenError
from engine.settings import Settings
from ripen import logs
from ripen.cli._common import (
    app,
    journeys_app,
    load_cli_settings,
    open_ripen,
    out,
    parse_time,
    prepare_prefect,
    say,
    terminated,
    warn_generated_key,
)
from ripen.cli.output import JsonOption, print_json, table


@app.command("plan-change")
def plan_change(as_json: JsonOption = False) -> None:
    """Before a journey change goes live: how many leads in flight each change would move."""
    from engine.bootstrap import bootstrap
    from engine.versions import plan

    ripen_app = bootstrap(load_cli_settings())
    try:
        with ripen_app.uow() as uow:
            moves = plan(uow, ripen_app.config)
    finally:
        ripen_app.dispose()
    if as_json:
        print_json([{"journey": move.journey, "policy": move.policy,
                     "from_version": move.from_version, "from_step": move.from_step,
                     "to_step": move.to_step, "leads": move.leads} for move in moves])
        return
    if not moves:
        out.print("no leads in flight on other versions: the change moves nobody")
        return
    moved = table("journey", "policy", "from version", "at step", "goes to", "leads",
                  title="Leads in flight on other versions", right=("leads",),
                  ids=("journey", "from version", "at step"))
    for move in moves:
        where = {"pin": "stays on its version", "drain": "new version at the next stage"}.get(
            move.policy, move.to_step or "")
        moved.add_row(move.journey, move.policy, move.from_version, move.from_step,
                      where, str(move.leads))
    out.print(moved)


@app.command()
def tick(
    now: Annotated[str | None, typer.Option(
        help="Run the whole tick at this time (ISO 8601): every step, the contact policy and "
             "the outbox see it, so a 30-day wait can be tried in one command. Not in "
             "production, not in the past [default: now]")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run one tick (the Prefect tick flow: every journey with work as its own flow run,
    then qualification, webhooks and the outbox) and print what it did."""
    settings = load_cli_settings()
    at = _travel_to(now, settings) if now else None
    prepare_prefect(settings)
    from engine.bootstrap import bootstrap
    from engine.clock import ManualClock, system_clock
    from flows.tick import run_tick

    _run_once(bootstrap(settings, clock=ManualClock(at) if at else system_clock), run_tick,
              what="tick", as_json=as_json, show=_print_tick)


def _run_once(ripen_app: Any, run: Callable[[], dict[str, Any]], *, what: str, as_json: bool,
              show: Callable[[dict[str, Any]], None]) -> None:
    """Run the tick or maintenance flow once on ``ripen_app`` and print its summary — also
    of a run with failed parts, which then ends in an error naming them (exit 1)."""
    from flows import runtime
    from flows.tick import TickFailed

    runtime.use(ripen_app)
    try:
        summary, failed = run(), None
    except TickFailed as exc:
        summary, failed = exc.summary, exc
    finally:
        runtime.use(None)
        ripen_app.dispose()
    if as_json:
        print_json(summary)
    else:
        show(summary)
    if failed is not None:
        raise RipenError(f"the {what} had failures: {failed}")


def _travel_to(text: str, settings: Settings) -> datetime:
    """``--now``: a time at or after the present; refused on a production database."""
    at = parse_time(text)
    if settings.env == "production":
        raise RipenError("--now is refused with RIPEN_ENV=production: the tick would send real "
                         "mail as if it were that time. Try it on a copy of the database "
                         "(RIPEN_DATABASE_URL) with a test relay or the Maildir (RIPEN_MAIL_URL)")
    present = datetime.now(UTC)
    if at < present - timedelta(minutes=1):
        raise RipenError(f"--now {at:%Y-%m-%dT%H:%M}Z is in the past: ripen's records only move "
                         f"forward in time (it is {present:%Y-%m-%dT%H:%M}Z now)")
    return at


def _print_tick(summary: dict[str, Any]) -> None:
    from flows.journeys import describe

    out.print(f"tick at {summary.get('at', '?')}", markup=False, soft_wrap=True)
    for version in summary.get("went_live", []):
        out.print(f"  {version}: live (a new journey version)", markup=False, soft_wrap=True)
    if summary.get("migrated"):
        out.print(f"  {summary['migrated']} leads moved to new versions (migrate)",
                  markup=False)
    if not summary.get("journeys"):
        out.print("  nothing due", markup=False)
    for name, journey in sorted(summary.get("journeys", {}).items()):
        if "failed" in journey:
            out.print(f"  {name}: FAILED: {journey['failed']}", markup=False, soft_wrap=True)
            continue
        out.print(f"  {name}: {describe(journey)}", markup=False, soft_wrap=True)
    for journey_id in summary.get("paused", []):
        out.print(f"  {journey_id}: paused", markup=False)
    quarantined = sum(summary.get("quarantined", {}).values())
    out.print(f"  qualified {summary.get('qualified')}, webhooks {summary.get('webhooks')}, "
              f"outbox {summary.get('mail')}"
              + (f"; {quarantined} leads quarantined (ripen leads quarantined)"
                 if quarantined else ""), markup=False, soft_wrap=True)


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Address the API listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API")] = 8000,
    tick_seconds: Annotated[int | None, typer.Option(
        help="Seconds between ticks [default: $RIPEN_TICK_SECONDS or 60]",
        show_default=False)] = None,
    ui: Annotated[bool, typer.Option(
        "--ui/--no-ui", help="Also serve Prefect's UI (the journeys' flow runs, their counts "
        "and artifacts) on 127.0.0.1:--ui-port; `make run` does")] = False,
    ui_port: Annotated[int, typer.Option(help="Port of Prefect's UI")] = 4200,
) -> None:
    """Validate, migrate, then serve the API and run the scheduler until Ctrl-C."""
    settings = load_cli_settings()
    prepare_prefect(settings)
    from ripen.prefect_ui import UiServer

    prefect_ui = UiServer(ui_port, settings.var_dir / "log" / "prefect-ui.log") if ui else None
    with ExitStack() as stack:
        if prefect_ui is not None:  # before Prefect is imported: its flows report to it
            say(settings)(f"starting Prefect's UI on {prefect_ui.url} (10–30 s the first "
                           "time) …")
            stack.callback(prefect_ui.stop)
            prefect_ui.start()
        _serve(settings, host=host, port=port, tick_seconds=tick_seconds,
               ui_url=prefect_ui.url if prefect_ui is not None else None)


def _serve(settings: Settings, *, host: str, port: int, tick_seconds: int | None,
           ui_url: str | None) -> None:
    """`ripen run` once Prefect's UI (if any) answers: the API and the scheduler."""
    import uvicorn

    from engine.bootstrap import bootstrap
    from flows import runtime
    from flows.tick import run_maintenance, run_tick
    from ripen.api.app import SchedulerStatus, create_app
    from ripen.scheduler import TickScheduler

    ripen_app = bootstrap(settings)
    runtime.use(ripen_app)
    status = SchedulerStatus()
    scheduler = TickScheduler(tick=run_tick, every_seconds=tick_seconds or settings.tick_seconds,
                              clock=ripen_app.clock, status=status,
                              maintenance=run_maintenance,
                              maintenance_seconds=settings.maintenance_seconds,
                              error_log=settings.var_dir / "log")
    api = create_app(ripen_app, status)
    logs.configure(settings.log_format)
    announce = say(settings)
    announce(f"ripen {ripen.__version__}: config {ripen_app.config.version}, "
             f"database {redact.url(settings.effective_database_url)}, "
             f"mail {redact.url(settings.effective_mail_url)}")
    warn_generated_key(ripen_app)
    if ui_url is not None:
        announce(f"Prefect UI: {ui_url} — each journey is a flow journey:<id>")
    # SIGTERM ends ripen as Ctrl-C does: uvicorn re-raises the signal once it has stopped,
    # and the default action would kill the process before Prefect's temporary server is
    # stopped (at exit), leaving it running.
    signal.signal(signal.SIGTERM, terminated)
    scheduler.start()
    try:
        # RIPEN_TRUSTED_PROXIES alone decides whose X-Forwarded-For counts (not uvicorn)
        uvicorn.run(api, host=host, port=port, log_level="info", proxy_headers=False,
                    log_config=logs.uvicorn_config(settings.log_format))
    finally:
        scheduler.shutdown()
        runtime.use(None)
        ripen_app.dispose()
        announce("ripen stopped")


@journeys_app.command("pause")
def journeys_pause(
    journey: Annotated[str, typer.Argument(help="The journey's id")],
    note: Annotated[str | None, typer.Option(help="Why (shown with it)")] = None,
) -> None:
    """Pause one journey: its steps stop running (no mail, no moves) until it is resumed;
    the YAML stays as it is. The tick's Prefect artifact lists it as paused."""
    with open_ripen() as ripen_app:
        changed = ripen_app.journeys.pause(journey, now=ripen_app.clock(), note=note)
    _announce(f"ripen.journey.{'paused' if changed else 'still-paused'}", journey)
    out.print(f"journey {journey} " + ("paused" if changed else "was paused already"),
              markup=False)


@journeys_app.command("resume")
def journeys_resume(journey: Annotated[str, typer.Argument(help="The journey's id")]) -> None:
    """Resume a paused journey: its due steps run at the next tick."""
    with open_ripen() as ripen_app:
        changed = ripen_app.journeys.resume(journey)
    if changed:
        _announce("ripen.journey.resumed", journey)
    out.print(f"journey {journey} " + ("resumed" if changed else "was not paused"),
              markup=False)


@journeys_app.command("list")
def journeys_list(
    as_json: JsonOption = False,
) -> None:
    """Every journey with its version, kind and persona, whether it is paused, and how many
    of its leads are quarantined."""
    from engine import quarantine

    with open_ripen() as ripen_app:
        paused = ripen_app.journeys.paused()
        held = quarantine.counts(ripen_app.uow)
        rows = [{"journey": j.id, "version": j.version, "kind": j.model.kind,
                 "persona": j.model.persona,
                 "paused_since": paused[j.id].isoformat() if j.id in paused else None,
                 "quarantined": held.get(j.id, 0)}
                for j in sorted(ripen_app.config.journeys.values(), key=lambda j: j.id)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        out.print(f"{row['journey']}@{row['version']} {row['kind']}"
                  + (f" persona {row['persona']}" if row["persona"] else "")
                  + (f" PAUSED since {row['paused_since']}" if row["paused_since"] else "")
                  + (f", {row['quarantined']} quarantined" if row["quarantined"] else ""),
                  markup=False, soft_wrap=True)


def _announce(event: str, journey: str) -> None:
    """Tell a Prefect server (deployment mode: PREFECT_API_URL) so its event feed shows the
    operator's pause or resume; without one the next tick's artifact shows it."""
    if not os.environ.get("PREFECT_API_URL"):
        return
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    emit_event(event=event, resource={"prefect.resource.id": f"ripen.journey.{journey}",
                                      "prefect.resource.name": journey})
    EventsWorker.drain_all()


@app.command()
def maintenance(as_json: JsonOption = False) -> None:
    """Run the maintenance flow once: DOI reminders, purge of unconfirmed sign-ups, SLA
    timers, outbox, retention, and the funnel report the workbench shows. A part that fails
    does not stop the others: what they did is printed, the failure named, exit 1."""
    settings = load_cli_settings()
    prepare_prefect(settings)
    from engine.bootstrap import bootstrap
    from flows.tick import run_maintenance

    _run_once(bootstrap(settings), run_maintenance, what="maintenance run", as_json=as_json,
              show=_print_maintenance)


def _print_maintenance(summary: dict[str, Any]) -> None:
    def part(key: str) -> str:
        return "failed" if summary.get(key) is None else str(summary[key])

    funnel = summary.get("funnel_seconds")
    out.print(f"reminders {part('reminded')}, purged {part('purged')}, "
              f"SLA escalations {part('escalated')}, webhooks {part('webhooks')}, "
              f"mail {part('mail')}"
              + (f", funnel report kept in {funnel} s" if funnel is not None else ""),
              markup=False, soft_wrap=True)
    for failure in summary.get("failures", []):
        out.print(f"failed: {failure}", markup=False, soft_wrap=True)
