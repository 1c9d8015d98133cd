"""The ``ripen`` command line. Usage mistakes exit 2 with Click's message, user errors exit 1
with a plain message; bugs exit 3."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from typer._click.exceptions import ClickException as TyperClickException
from typer.exceptions import Abort as TyperAbort
from typer.exceptions import Exit as TyperExit

import ripen
from engine import redact
from engine.bootstrap import Ripen
from engine.config.compiler import CompiledConfig, load_and_compile
from engine.config.loader import ConfigPaths
from engine.consent import LEAD_SOURCES
from engine.errors import ConfigError, RipenError
from engine.settings import Settings, load_settings
from engine.stages import BuyingStage
from ripen import errorlog, logs

T = TypeVar("T")

app = typer.Typer(
    name="ripen",
    help="ripen: B2B lead nurturing. Personas, content and journeys in YAML; journeys run in "
    "a Prefect flow; ripe leads go to sales through a signed webhook.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(show: bool) -> None:
    if show:
        print(f"ripen {ripen.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print ripen's version and exit")] = False) -> None:
    """ripen: B2B lead nurturing."""


db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
consent_app = typer.Typer(help="Consent records (double opt-in proof).", no_args_is_help=True)
app.add_typer(consent_app, name="consent")
bounces_app = typer.Typer(help="Asynchronous bounces and spam complaints.",
                          no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")
handovers_app = typer.Typer(help="Handovers to sales and their signed webhook deliveries.",
                            no_args_is_help=True)
app.add_typer(handovers_app, name="handovers")
routing_app = typer.Typer(help="Lead routing to reps.", no_args_is_help=True)
app.add_typer(routing_app, name="routing")
gdpr_app = typer.Typer(help="GDPR: export or erase one person's data.", no_args_is_help=True)
app.add_typer(gdpr_app, name="gdpr")
outbox_app = typer.Typer(help="The mail outbox: what was sent, what waits, what is unknown.",
                         no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
leads_app = typer.Typer(help="Leads held back by a failure of their own: list and retry.",
                        no_args_is_help=True)
app.add_typer(leads_app, name="leads")
journeys_app = typer.Typer(help="Journeys at run time: pause and resume them.",
                           no_args_is_help=True)
app.add_typer(journeys_app, name="journeys")
audit_app = typer.Typer(help="Audits of the configuration (content gaps).",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")

out = Console(highlight=False)

RootOption = Annotated[
    Path | None,
    typer.Option("--root", "-C", help="Folder holding config/, content/ and templates/email/ "
                 "[default: $RIPEN_HOME or the current folder]", show_default=False),
]


def _settings(root: Path | None = None) -> Settings:
    return load_settings(home=root) if root is not None else load_settings()


def _paths(root: Path | None) -> ConfigPaths:
    return ConfigPaths.under(Path(_settings(root).home))


@app.command()
def validate(root: RootOption = None) -> None:
    """Check every YAML file and template; print a summary, or each problem as file:line:col."""
    config = load_and_compile(_paths(root))
    _summary(config)


def _summary(config: CompiledConfig) -> None:
    stages = [s.value for s in BuyingStage]
    table = Table(title="Content per persona and stage", title_justify="left")
    table.add_column("persona")
    for stage in stages:
        table.add_column(stage, justify="right")
    table.add_column("fast lane", justify="right")
    for persona in config.personas.values():
        counts = [str(len(config.content_for(persona.id, BuyingStage(s)))) for s in stages]
        fast = sum(1 for c in config.content.values() if c.fast_lane and persona.id in c.personas)
        table.add_row(f"{persona.name} ({persona.id})", *counts, str(fast))
    out.print(table)
    journeys = Table(title="Journeys", title_justify="left")
    for column in ("journey", "kind", "version", "stages", "steps"):
        journeys.add_column(column)
    for journey in config.journeys.values():
        journeys.add_row(journey.id, journey.model.kind, journey.version,
                         " ".join(s.value for s, _ in journey.model.stages.declared()),
                         str(len(journey.steps)))
    out.print(journeys)
    steps = sum(len(j.steps) for j in config.journeys.values())
    counts = ", ".join(_count(n, what) for n, what in (
        (len(config.personas), "persona"), (len(config.content), "content item"),
        (len(config.journeys), "journey"), (steps, "step")))
    out.print(f"OK: {counts} (config version {config.version})", soft_wrap=True)


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'' if number == 1 else 's'}"


@app.command()
def graph(
    journey: Annotated[str, typer.Argument(help="Journey id, e.g. monika-marketing")],
    root: RootOption = None,
) -> None:
    """Print a journey as a Mermaid flowchart: its stages, steps and branches as they run."""
    from engine.diagram import mermaid

    config = load_and_compile(_paths(root))
    print(mermaid(_known(config.journeys, journey, "journey")), end="")


@app.command()
def preview(
    template: Annotated[str, typer.Argument(help="Template name, e.g. content_offer")],
    persona: Annotated[str, typer.Option(help="Persona id whose sample lead is shown")],
    content: Annotated[str, typer.Option(help="Content item id offered in the mail")],
    fast_lane: Annotated[str | None, typer.Option(
        "--fast-lane", help="A fast_lane content item offered alongside")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the files")] = Path(
        "var/preview"),
    root: RootOption = None,
) -> None:
    """Render a marketing template for a persona and content item into HTML and text files."""
    from engine.mail.context import marketing_context, sample_lead
    from engine.mail.render import Renderer

    config = load_and_compile(_paths(root))
    chosen = _known(config.personas, persona, "persona")
    item = _known(config.content, content, "content")
    offer = _known(config.content, fast_lane, "content") if fast_lane else None
    if template not in config.templates.names() or config.templates.missing_parts(template):
        raise RipenError(f'no template "{template}" with both parts in '
                         f"{config.templates.display('')}")
    base = _settings(root).public_base_url.rstrip("/")
    context = marketing_context(
        subject=item.title, lead=sample_lead(chosen), persona=chosen, content=item,
        fast_lane_offer=offer, fast_lane_url=f"{base}/fast-lane/PREVIEW",
        unsubscribe_url=f"{base}/u/PREVIEW", identity=config.mail)
    html, text = Renderer(config.templates.folder).render(template, context)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{template.replace('/', '_')}-{persona}-{content}"
    (out_dir / f"{stem}.html").write_text(html, encoding="utf-8")
    (out_dir / f"{stem}.txt").write_text(text, encoding="utf-8")
    out.print(f"wrote {out_dir / stem}.html and .txt (subject: {item.title})", markup=False,
              soft_wrap=True)


@app.command("plan-change")
def plan_change() -> None:
    """Before a journey change goes live: how many leads in flight each change would move."""
    from engine.bootstrap import bootstrap
    from engine.versions import plan

    ripen_app = bootstrap(_settings())
    try:
        with ripen_app.uow() as uow:
            moves = plan(uow, ripen_app.config)
    finally:
        ripen_app.dispose()
    if not moves:
        out.print("no leads in flight on other versions: the change moves nobody")
        return
    table = Table(title="Leads in flight on other versions", title_justify="left")
    for column in ("journey", "policy", "from version", "at step", "goes to", "leads"):
        table.add_column(column, no_wrap=column != "goes to")  # ids stay whole
    for move in moves:
        where = {"pin": "stays on its version", "drain": "new version at the next stage"}.get(
            move.policy, move.to_step or "")
        table.add_row(move.journey, move.policy, move.from_version, move.from_step,
                      where, str(move.leads))
    out.print(table)


@app.command()
def schema(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the *.schema.json files")]
    = Path("config/schemas"),
) -> None:
    """Write JSON Schemas for every config file kind (editors validate and autocomplete)."""
    from engine.config.schema import write_schemas

    for path in write_schemas(out_dir):
        out.print(f"wrote {path}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to RIPEN_DATABASE_URL (ripen run does this on start)."""
    from engine.store import database

    settings = _settings()
    engine = database.make_engine(settings.effective_database_url)
    try:
        database.upgrade(engine)
        out.print(f"database at revision {database.current_revision(engine)}")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision and the newest one available."""
    from engine.store import database

    engine = database.make_engine(_settings().effective_database_url)
    try:
        out.print(f"current: {database.current_revision(engine) or 'none'}, "
                  f"head: {database.head_revision()}")
    finally:
        engine.dispose()


def _prepare_prefect(settings: Settings) -> None:
    """Embedded mode: Prefect keeps its files under var/ and calls nobody."""
    home = Path(os.environ.setdefault("PREFECT_HOME",
                                      str((settings.var_dir / "prefect").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
    # the temporary server's first start migrates its database: 20 s (Prefect's default) is
    # too short on a busy two-core machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    logs.prepare(settings.log_format, settings.var_dir / "log")


@app.command()
def tick(
    now: Annotated[str | None, typer.Option(
        help="Run the whole tick at this time (ISO 8601): every step, the contact policy and "
             "the outbox see it, so a 30-day wait can be tried in one command. Not in "
             "production, not in the past [default: now]")] = None,
) -> None:
    """Run one tick (the Prefect tick flow: every journey with work as its own flow run,
    then qualification, webhooks and the outbox) and print what it did."""
    settings = _settings()
    at = _travel_to(now, settings) if now else None
    _prepare_prefect(settings)
    from engine.bootstrap import bootstrap
    from engine.clock import ManualClock, system_clock
    from flows import runtime
    from flows.tick import TickFailed, run_tick

    ripen_app = bootstrap(settings, clock=ManualClock(at) if at else system_clock)
    runtime.use(ripen_app)
    try:
        summary = run_tick()
        failed = None
    except TickFailed as exc:
        summary, failed = exc.summary, exc
    finally:
        runtime.use(None)
        ripen_app.dispose()
    _print_tick(summary)
    if failed is not None:
        raise RipenError(f"the tick had failures: {failed}")


def _travel_to(text: str, settings: Settings) -> datetime:
    """``--now``: a time at or after the present; refused on a production database."""
    at = _parse_time(text)
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


def _known(items: Mapping[str, T], key: str, what: str) -> T:
    """``items[key]``, or a plain error naming what exists."""
    if key not in items:
        shown = ", ".join(sorted(items)[:12]) + (" …" if len(items) > 12 else "")
        raise RipenError(f'unknown {what} "{key}"; known: {shown}')
    return items[key]


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RipenError(f'--now "{text}" is not an ISO 8601 time, e.g. 2026-11-23T09:00:00Z') \
            from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    settings = _settings()
    _prepare_prefect(settings)
    from ripen.prefect_ui import UiServer

    prefect_ui = UiServer(ui_port, settings.var_dir / "log" / "prefect-ui.log") if ui else None
    with ExitStack() as stack:
        if prefect_ui is not None:  # before Prefect is imported: its flows report to it
            _say(settings)(f"starting Prefect's UI on {prefect_ui.url} (10–30 s the first "
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
    say = _say(settings)
    say(f"ripen {ripen.__version__}: config {ripen_app.config.version}, "
        f"database {redact.url(settings.effective_database_url)}, "
        f"mail {redact.url(settings.effective_mail_url)}")
    _warn_generated_key(ripen_app)
    if ui_url is not None:
        say(f"Prefect UI: {ui_url} — each journey is a flow journey:<id>")
    # SIGTERM ends ripen as Ctrl-C does: uvicorn re-raises the signal once it has stopped,
    # and the default action would kill the process before Prefect's temporary server is
    # stopped (at exit), leaving it running.
    signal.signal(signal.SIGTERM, _terminated)
    scheduler.start()
    try:
        # RIPEN_TRUSTED_PROXIES alone decides whose X-Forwarded-For counts (not uvicorn)
        uvicorn.run(api, host=host, port=port, log_level="info", proxy_headers=False,
                    log_config=logs.uvicorn_config(settings.log_format))
    finally:
        scheduler.shutdown()
        runtime.use(None)
        ripen_app.dispose()
        say("ripen stopped")


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _say(settings: Settings) -> Callable[[str], None]:
    """Where `ripen run` says what it does: the console, or in JSON mode the log (one JSON
    object a line, nothing else)."""
    if settings.log_format == "json":
        return logging.getLogger("ripen.run").info
    return lambda text: out.print(text, markup=False, soft_wrap=True)


def _warn_generated_key(ripen_app: Ripen) -> None:
    from engine.bootstrap import GENERATED_KEY_WARNING

    if ripen_app.signing_keys != "generated":
        return
    if ripen_app.settings.log_format == "json":
        logging.getLogger("ripen.run").warning(GENERATED_KEY_WARNING)
    else:
        _plain_error(f"WARNING: {GENERATED_KEY_WARNING}")


@contextmanager
def _ripen() -> Iterator[Ripen]:
    from engine.bootstrap import bootstrap

    ripen_app = bootstrap(_settings())
    try:
        yield ripen_app
    finally:
        ripen_app.dispose()


@app.command("import")
def import_leads(
    file: Annotated[Path, typer.Argument(help="CSV with an `email` column; optional: "
                                         "first_name, last_name, company, job_title, phone, "
                                         "language, campaign, persona, consent_purposes, "
                                         "industry, company_size, region, customer_stage")],
    source: Annotated[str, typer.Option(help="Where the leads came from: " +
                                        ", ".join(LEAD_SOURCES))],
    campaign: Annotated[str | None, typer.Option(help="Campaign for rows without one")] = None,
    consent_version: Annotated[str | None, typer.Option(
        help="Consent text version the leads agreed to [default: current]",
        show_default=False)] = None,
    customers: Annotated[str | None, typer.Option(
        help="The rows are existing customers: once confirmed they enter this after-sales "
             "journey (e.g. after-sales) instead of nurturing", show_default=False)] = None,
    stage: Annotated[str | None, typer.Option(
        help="With --customers: the stage they start at (AFS, WIK or CUS) for rows without "
             "a customer_stage [default: the journey's first]", show_default=False)] = None,
    encoding: Annotated[str | None, typer.Option(
        help="The file's encoding, e.g. cp1252 [default: UTF-8, else detected]",
        show_default=False)] = None,
) -> None:
    """Import leads (or, with --customers, existing customers) from CSV — UTF-8 or detected
    (Excel's Windows-1252), comma or semicolon separated; each gets a confirmation mail
    (double opt-in) unless already confirmed."""
    from rich.progress import BarColumn, Progress, TextColumn

    from engine.importer import import_csv, read_rows

    if source not in LEAD_SOURCES:
        raise RipenError(f'--source "{source}" is not one of: {", ".join(LEAD_SOURCES)}')
    if stage is not None and customers is None:
        raise RipenError("--stage needs --customers JOURNEY (the stage of that journey)")
    total = sum(1 for _ in read_rows(file, encoding))
    with _ripen() as ripen_app, Progress(TextColumn("{task.description}"), BarColumn(),
                                         TextColumn("{task.completed}/{task.total} rows"),
                                         console=out) as progress:
        if customers is not None:
            ripen_app.consent.check_customer(customers, stage.upper() if stage else None)
        task = progress.add_task(f"importing {file.name}", total=total)
        summary = import_csv(file, ripen_app.consent, source=source, campaign=campaign,
                             customers=customers, stage=stage.upper() if stage else None,
                             consent_version=consent_version or ripen_app.config.consent.current,
                             encoding=encoding, progress=lambda _line: progress.advance(task))
        sent = ripen_app.send_mail(summary.confirmation_mails) if summary.confirmation_mails \
            else {}
    for line, trace in summary.failed:
        errorlog.record(f"import of {file} line {line}:\n{trace}")
    waiting = sent.get("retry", 0) + sent.get("deferred", 0)
    out.print(f"read {file.name} as {summary.encoding}: "
              f"imported {summary.imported}, merged {summary.merged}, "
              f"refused {len(summary.refused)}, confirmation mails sent "
              f"{sent.get('sent', 0)}" + (f", {waiting} waiting for the outbox's next run "
                                          "(relay busy or refusing)" if waiting else ""),
              soft_wrap=True)
    for line, reason in summary.refused[:50]:
        out.print(f"  line {line}: {reason}", markup=False, soft_wrap=True)
    if len(summary.refused) > 50:
        out.print(f"  … and {len(summary.refused) - 50} more", soft_wrap=True)


@bounces_app.command("ingest")
def bounces_ingest(
    path: Annotated[Path, typer.Argument(
        help="A report mail, a Maildir (new/ is moved to cur/), or a folder of .eml files")],
) -> None:
    """Read RFC 3464 delivery reports and RFC 5965 (ARF) complaints; suppress as configured.

    Hard bounces and complaints suppress the address at once, soft bounces after
    mail.bounces.soft_limit within mail.bounces.window. Reading the same mail twice counts
    it once. Mail that is not a report (auto-replies) is listed and left alone.
    """
    from engine.bounces import ingest

    with _ripen() as ripen_app:
        summary = ingest(path, ripen_app.uow, rules=ripen_app.config.mail.bounces,
                         clock=ripen_app.clock, webhooks=ripen_app.config.sla.webhooks)
    counts = summary.counts
    out.print(f"{summary.files} files: hard {counts['hard']}, soft {counts['soft']}, "
              f"complaints {counts['complaint']}, suppressed {counts['suppressed']}, "
              f"already recorded {counts['duplicate']}, unknown recipient "
              f"{counts['unknown']}, not a report {len(summary.skipped)}", markup=False,
              soft_wrap=True)
    for name, reason in summary.skipped[:50]:
        out.print(f"  {name}: {reason}", markup=False, soft_wrap=True)


@app.command()
def explain(email: Annotated[str, typer.Argument(help="The lead's e-mail address")]) -> None:
    """Why a lead has its score and grade, and why it is (not yet) an MQL."""
    from engine.addresses import normalise_email

    with _ripen() as ripen_app:
        found = ripen_app.handovers.explain(normalise_email(email))
    if found is None:
        raise RipenError(f"no lead with the address {email}")
    lead, score = found.lead, found.score
    out.print(f"{lead.email}: grade {score.grade} (fit {score.fit}: explicit "
              f"{score.explicit:.0f} points; engagement {score.engagement}: implicit "
              f"{score.implicit:.1f} points now), persona {lead.persona_id or '-'}, stage "
              f"{lead.funnel_stage}, sales stage {lead.sales_stage or '-'}",
              markup=False, soft_wrap=True)
    table = Table("kind", "rule", "when", "points then", "points now", box=box.SIMPLE)
    for line in score.lines:
        table.add_row(line.kind, line.rule_id, f"{line.at:%Y-%m-%d %H:%M}",
                      f"{line.delta:+.1f}", f"{line.points:+.1f}")
    out.print(table)
    for check in found.checks:
        conditions = "; ".join(f"{text} {'✓' if ok else '✗'}" for text, ok in check.conditions)
        out.print(f"MQL rule {check.rule}: {'holds' if check.holds else 'does not hold'} — "
                  f"{conditions}", markup=False, soft_wrap=True)
    if lead.recycled_at is not None:
        out.print(f"recycled {lead.recycled_at:%Y-%m-%d}: only engagement since then counts "
                  "for the MQL rule", markup=False, soft_wrap=True)
    for handover in found.handovers:
        out.print(f"handover {handover.public_id} {handover.created_at:%Y-%m-%d %H:%M} "
                  f"{handover.reason} → {handover.rep_id or '-'}: {handover.status}"
                  + (f" ({handover.rejection_code})" if handover.rejection_code else "")
                  + (f", {handover.outcome}" if handover.outcome else ""),
                  markup=False, soft_wrap=True)
    if not found.is_mql and lead.sales_stage is None:
        out.print("not an MQL yet: no MQL rule holds", markup=False)


@handovers_app.command("list")
def handovers_list(
    status: Annotated[str | None, typer.Option(
        help="Only deliveries in this state: pending, retry, delivered, dead, disabled …")]
    = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
) -> None:
    """Webhook deliveries of handovers, newest first, with their state and last error."""
    with _ripen() as ripen_app, ripen_app.uow() as uow:
        rows = uow.webhooks(status=status, limit=limit)
        for row in rows:  # one line each: operators grep for a webhook-id
            nxt = f" next {row.next_attempt_at:%Y-%m-%d %H:%M}" if row.next_attempt_at else ""
            last = row.last_error or (str(row.last_status_code) if row.last_status_code
                                      else "")
            out.print(f"{row.id} {row.webhook_id} {row.endpoint_id} {row.event_type} "
                      f"{row.status} attempts {row.attempts}{nxt}"
                      + (f" — {last}" if last else ""), markup=False, soft_wrap=True)
    out.print(f"{len(rows)} deliveries", markup=False)


@handovers_app.command("replay")
def handovers_replay(
    delivery: Annotated[int, typer.Argument(help="Delivery id from `ripen handovers list`")],
) -> None:
    """Send a delivery again (e.g. from the dead letter), keeping its webhook-id."""
    from engine.webhooks import replay

    with _ripen() as ripen_app:
        row = replay(ripen_app.uow, delivery, ripen_app.clock())
        counts = ripen_app.send_webhooks(ids=[delivery])
    out.print(f"delivery {delivery} ({row.webhook_id}) to {row.endpoint_id}: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False, soft_wrap=True)


@leads_app.command("quarantined")
def leads_quarantined(
    journey: Annotated[str | None, typer.Option(help="Only this journey's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON, for machines")] = False,
) -> None:
    """Leads whose step could not be done (their mail did not render, a filter failed on
    their values): where they stopped and why. Fix the template or the data, then
    `ripen leads retry`."""
    from engine import quarantine

    with _ripen() as ripen_app:
        held = quarantine.listed(ripen_app.uow, journey=journey)
    if as_json:
        print(json.dumps([q.as_json() for q in held], indent=2))
        return
    for q in held:
        out.print(f"{q.email} {q.journey}@{q.version} {q.stage}:{q.step} since "
                  f"{q.since:%Y-%m-%d %H:%M} — {q.reason}" if q.since else
                  f"{q.email} {q.journey}@{q.version} {q.stage}:{q.step} — {q.reason}",
                  markup=False, soft_wrap=True)
    out.print(f"{len(held)} quarantined", markup=False)


@leads_app.command("retry")
def leads_retry(
    emails: Annotated[list[str] | None, typer.Argument(
        help="Addresses to retry [default: every quarantined lead, or --journey's]",
        show_default=False)] = None,
    journey: Annotated[str | None, typer.Option(help="Only this journey's")] = None,
) -> None:
    """Make quarantined leads due again at their step: the next tick does it, once (the
    outbox key of lead, journey version and step keeps a mail from going out twice)."""
    from engine import quarantine

    with _ripen() as ripen_app:
        released = quarantine.retry(ripen_app.uow, now=ripen_app.clock(), journey=journey,
                                    emails=emails or [])
    for q in released:
        out.print(f"{q.email} {q.journey} {q.stage}:{q.step}: due again", markup=False,
                  soft_wrap=True)
    out.print(f"{len(released)} leads due again at the next tick", markup=False)


@journeys_app.command("pause")
def journeys_pause(
    journey: Annotated[str, typer.Argument(help="The journey's id")],
    note: Annotated[str | None, typer.Option(help="Why (shown with it)")] = None,
) -> None:
    """Pause one journey: its steps stop running (no mail, no moves) until it is resumed;
    the YAML stays as it is. The tick's Prefect artifact lists it as paused."""
    with _ripen() as ripen_app:
        changed = ripen_app.journeys.pause(journey, now=ripen_app.clock(), note=note)
    _announce(f"ripen.journey.{'paused' if changed else 'still-paused'}", journey)
    out.print(f"journey {journey} " + ("paused" if changed else "was paused already"),
              markup=False)


@journeys_app.command("resume")
def journeys_resume(journey: Annotated[str, typer.Argument(help="The journey's id")]) -> None:
    """Resume a paused journey: its due steps run at the next tick."""
    with _ripen() as ripen_app:
        changed = ripen_app.journeys.resume(journey)
    if changed:
        _announce("ripen.journey.resumed", journey)
    out.print(f"journey {journey} " + ("resumed" if changed else "was not paused"),
              markup=False)


@journeys_app.command("list")
def journeys_list(
    as_json: Annotated[bool, typer.Option("--json", help="As JSON, for machines")] = False,
) -> None:
    """Every journey with its version, kind and persona, whether it is paused, and how many
    of its leads are quarantined."""
    from engine import quarantine

    with _ripen() as ripen_app:
        paused = ripen_app.journeys.paused()
        held = quarantine.counts(ripen_app.uow)
        rows = [{"journey": j.id, "version": j.version, "kind": j.model.kind,
                 "persona": j.model.persona,
                 "paused_since": paused[j.id].isoformat() if j.id in paused else None,
                 "quarantined": held.get(j.id, 0)}
                for j in sorted(ripen_app.config.journeys.values(), key=lambda j: j.id)]
    if as_json:
        print(json.dumps(rows, indent=2))
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


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(
        help="Only mails in this state: pending, retry, sending, sent, unknown, failed, "
        "suppressed …")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
) -> None:
    """Outbox mails, newest first. `unknown`: a sender died after SMTP DATA began — the relay
    may have the mail; look its Message-ID up in the relay log, then `ripen outbox settle`."""
    with _ripen() as ripen_app, ripen_app.uow() as uow:
        rows = uow.outbox_rows(status=status, limit=limit)
        for row in rows:
            out.print(f"{row.id} {row.status} {row.category} {row.message_id} "
                      f"attempts {row.attempts} {row.idempotency_key}"
                      + (f" — {row.last_error}" if row.last_error else ""),
                      markup=False, soft_wrap=True)
    out.print(f"{len(rows)} mails", markup=False)


@outbox_app.command("settle")
def outbox_settle(
    row: Annotated[int, typer.Argument(help="Outbox id from `ripen outbox list`")],
    sent: Annotated[bool, typer.Option("--sent/--resend", help="The relay log shows it "
                                       "(--sent), or it does not: send it again (--resend)")],
) -> None:
    """Settle a mail left `unknown` after a crash, once the relay log has answered."""
    from engine.outbox import settle_unknown

    with _ripen() as ripen_app:
        settled = settle_unknown(ripen_app.uow, row, sent=sent, now=ripen_app.clock())
        counts = ripen_app.send_mail(ids=[row]) if not sent else None
    out.print(f"outbox {row} {settled.message_id}: "
              + ("marked sent" if sent else "sent again: " + ", ".join(
                  f"{k} {v}" for k, v in (counts or {}).items())), markup=False,
              soft_wrap=True)


@audit_app.command("content")
def audit_content(
    root: RootOption = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 when a persona × stage cell has no content (for CI)")] = False,
    stale_after: Annotated[str, typer.Option(
        help="Content published longer ago than this is listed as stale (e.g. 365d, 104w)")
    ] = "730d",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """The persona × stage content matrix: items, fast-lane offers, the journey's sends and
    cadence, the runway in days; content no journey uses; stale content."""
    import json
    from datetime import UTC, datetime

    from engine.audit import audit_content as run_audit
    from engine.durations import parse_duration

    try:
        age = parse_duration(stale_after)
    except ValueError as exc:
        raise RipenError(f"--stale-after: {exc}") from None
    config = load_and_compile(_paths(root))
    report = run_audit(config, today=datetime.now(UTC).date(), stale_after=age)
    if as_json:
        print(json.dumps({
            "cells": [{"persona": c.persona, "stage": c.stage.value, "items": list(c.items),
                       "fast_lane": list(c.fast_lane), "sends": c.sends,
                       "wait_days": c.wait_days, "runway_days": c.runway_days}
                      for c in report.cells],
            "gaps": [f"{c.persona}/{c.stage.value}" for c in report.gaps],
            "unreferenced": list(report.unreferenced),
            "stale": [{"content": i, "published": str(d)} for i, d in report.stale]},
            indent=2))
    else:
        table = Table("persona", *(s.value for s in report.stages), box=box.SIMPLE,
                      title="items (fast lane) · sends/days · runway")
        for persona in sorted({c.persona for c in report.cells}):
            row = []
            for cell in (c for c in report.cells if c.persona == persona):
                if cell.empty:
                    row.append("[red]GAP[/red]")
                    continue
                text = f"{len(cell.items)} ({len(cell.fast_lane)})"
                if cell.sends:
                    text += f" · {cell.sends}/{cell.wait_days:g}d"
                if cell.runway_days is not None:
                    text += f" · {cell.runway_days:.0f}d"
                row.append(text)
            table.add_row(persona, *row)
        out.print(table)
        out.print("unused by any journey: " + (", ".join(report.unreferenced) or "none"),
                  markup=False, soft_wrap=True)
        out.print(f"stale (published over {stale_after} ago): "
                  + (", ".join(f"{i} ({d})" for i, d in report.stale) or "none"),
                  markup=False, soft_wrap=True)
        for gap in report.gaps:
            out.print(f"gap: no content for {gap.persona} at {gap.stage.value}", markup=False)
    if strict and report.gaps:
        raise typer.Exit(1)


@app.command()
def plan(
    revenue: Annotated[float, typer.Option(help="Revenue target for the period (EUR)")],
    deal_size: Annotated[float, typer.Option(help="Average deal size (EUR)")],
    rate: Annotated[list[str] | None, typer.Option(
        help="A conversion rate FROM:TO=RATE (stages target, lead, mql, sal, won), e.g. "
             "--rate lead:mql=0.25 --rate mql:sal=50% --rate sal:won=0.3; repeat to chain "
             "[default: planning.rates in config/sla.yaml, else history, else the rule of "
             "ten]", show_default=False)] = None,
    history_days: Annotated[int, typer.Option(
        help="Look-back for historic rates and source shares (days)")] = 365,
    no_history: Annotated[bool, typer.Option(
        "--no-history", help="Do not read the database (rates from --rate or rule of ten)")
    ] = False,
) -> None:
    """Funnel planning: how many leads each stage needs for a revenue target, per source,
    and whether the open pipeline reaches it."""
    from datetime import timedelta

    from engine.plan import RULE_OF_TEN, History, expected_customers, funnel_plan, parse_rates
    from engine.report import funnel_report

    history = pipeline = None
    if not no_history:
        with _ripen() as ripen_app, ripen_app.uow() as uow:
            now = ripen_app.clock()
            history = History.of(funnel_report(uow, now - timedelta(days=history_days),
                                               now + timedelta(seconds=1)))
            pipeline = uow.open_pipeline()
    chain = parse_rates(rate or [])
    source = "command line"
    if not chain:
        agreed = load_and_compile(_paths(None)).sla.planning.rates
        chain, source = parse_rates(agreed), "config/sla.yaml"
    if not chain and history is not None and history.rates() is not None:
        chain, source = history.rates() or (), f"history ({history_days} days)"
    if not chain:
        chain, source = RULE_OF_TEN, "rule of ten (500 → 50 → 5)"
    result = funnel_plan(revenue=revenue, deal_size=deal_size, rates=chain, rates_from=source,
                         history=history)
    out.print(f"{result.customers} customers needed (revenue {revenue:,.0f} / deal size "
              f"{deal_size:,.0f}); rates from {source}", markup=False, soft_wrap=True)
    table = Table("stage", "needed", "conversion to next", box=box.SIMPLE)
    for step in result.steps:
        table.add_row(step.stage, f"{step.needed:,}",
                      f"{step.rate_to_next:.1%}" if step.rate_to_next is not None else "")
    out.print(table)
    if result.by_source:
        sources = Table("source", "leads needed (historic share)", "lead → won", box=box.SIMPLE)
        for name, needed, won in result.by_source:
            sources.add_row(name, f"{needed:,}", f"{won:.1%}" if won is not None else "-")
        out.print(sources)
    if pipeline is not None:
        expected = expected_customers(pipeline, chain)
        verdict = "reaches" if expected >= result.customers else "does not reach"
        out.print(f"open pipeline: {pipeline['mql']} MQL, {pipeline['sal']} with sales (SAL "
                  f"or later) → about {expected:.1f} customers: it {verdict} the target of "
                  f"{result.customers}", markup=False, soft_wrap=True)


@app.command()
def report(
    since: Annotated[str | None, typer.Option(
        help="First day of the period (YYYY-MM-DD) [default: 90 days ago]",
        show_default=False)] = None,
    until: Annotated[str | None, typer.Option(
        help="Day after the period (YYYY-MM-DD) [default: tomorrow]", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Also write a self-contained HTML report with charts to this file",
        show_default=False)] = None,
) -> None:
    """The funnel for a period: the demand waterfall (Inquiry → MQL → SAL → Won) in total
    and by persona, source and campaign; the advanced funnel (INF … BEW) with velocity;
    fast-lane share, SLA, rejection reasons, recycled leads; content and journey performance
    (sends, clicks, stage advances, unsubscribe and bounce rates); sends deferred or
    suppressed by policy; sources ranked by quality; data quality."""
    import json
    from datetime import timedelta

    from engine.report import WATERFALL, funnel_report, period

    with _ripen() as ripen_app, ripen_app.uow() as uow:
        start, end = period(since, until, ripen_app.clock(), names=("--since", "--until"))
        result = funnel_report(uow, start, end)
        generated = ripen_app.wall()
    if html is not None:
        from ripen import html_report

        html_report.write(html, html_report.render(result, title="ripen funnel report",
                                                   generated=generated))
        if not as_json:
            out.print(f"HTML report written to {html}", markup=False, soft_wrap=True)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    out.print(f"{start:%Y-%m-%d} … {end - timedelta(days=1):%Y-%m-%d}", markup=False)
    for title, groups in (("total", {"all": result.total}), ("persona", result.by_persona),
                          ("source", result.by_source), ("campaign", result.by_campaign)):
        table = Table(title, *WATERFALL, "MQL/inq.", "SAL/MQL", "SQL/SAL", "won/SQL",
                      box=box.SIMPLE)
        for key, waterfall in sorted(groups.items()):
            rates = list(waterfall.conversions().values())
            table.add_row(key, *(str(getattr(waterfall, s)) for s in WATERFALL),
                          *(f"{r:.0%}" if r is not None else "-" for r in rates))
        out.print(table)
    median = result.hours_to_answer_median
    out.print(f"handovers {result.handovers}, fast lane {result.fast_lane}, answered "
              f"{result.answered}" + (f" (median {median:.1f} h, p90 "
                                      f"{result.hours_to_answer_p90:.1f} h)" if median else "")
              + f", SLA breaches {result.breaches}; rejections: "
              + (", ".join(f"{k} {v}" for k, v in sorted(result.rejection_reasons.items()))
                 or "none")
              + f"; recycled {result.recycled}, of them MQL again {result.recycled_to_mql}",
              markup=False, soft_wrap=True)
    ranking = Table("source (best first)", "leads", "→ SAL", "→ won", box=box.SIMPLE)
    for row in result.source_ranking:
        ranking.add_row(row["source"], str(row["leads"]), f"{row['sal_rate']:.0%}",
                        f"{row['won_rate']:.0%}")
    out.print(ranking)
    if result.stages:
        stages = Table("stage", "reached", "of previous", "days (median)", "days (p90)",
                       "stays", box=box.SIMPLE)
        for flow in result.stages:
            stages.add_row(flow.stage, str(flow.reached),
                           f"{flow.conversion:.0%}" if flow.conversion is not None else "",
                           f"{flow.days_median:.1f}" if flow.days_median is not None else "-",
                           f"{flow.days_p90:.1f}" if flow.days_p90 is not None else "-",
                           str(flow.stays))
        out.print(stages)

    def rate(value: float | None) -> str:
        return f"{value:.1%}" if value is not None else "-"

    content = Table("content", "sends", "clicks", "downloads", "advances", "unsubscribed",
                    "bounced", box=box.SIMPLE)
    for content_id, counts in result.content.items():
        content.add_row(content_id, str(counts["sends"]), str(counts["clicks"]),
                        str(counts["downloads"]), str(counts["stage_advances"]),
                        rate(counts["unsubscribe_rate"]), rate(counts["bounce_rate"]))
    out.print(content)
    if result.journeys:
        journeys = Table("journey", "sends", "deferred", "unsubscribed", "bounced",
                         box=box.SIMPLE)
        for journey_id, row in result.journeys.items():
            journeys.add_row(journey_id, str(row["sends"]), str(row["deferred"]),
                             rate(row.get("unsubscribe_rate")), rate(row.get("bounce_rate")))
        out.print(journeys)
    for kind in ("deferred", "suppressed"):
        found = result.policy.get(kind, {})
        out.print(f"{kind} by policy: " + (", ".join(f"{k} {v}" for k, v in found.items())
                                            or "none"), markup=False, soft_wrap=True)
    quality = result.data_quality
    out.print("data quality of confirmed leads: " + (", ".join(
        f"{k.replace('_', ' ')} {v}" for k, v in quality.items()) or "no leads"),
        markup=False, soft_wrap=True)


def _shares(texts: list[str] | None, option: str) -> dict[str, float] | None:
    """``name=share`` options (repeatable) into a mix; RipenError names the bad one."""
    if not texts:
        return None
    mix: dict[str, float] = {}
    for text in texts:
        name, _, share = text.partition("=")
        try:
            value = float(share.rstrip("%")) / (100 if share.endswith("%") else 1)
        except ValueError:
            raise RipenError(f'{option} "{text}" is not NAME=SHARE, e.g. {option} '
                             "eager=0.3") from None
        mix[name.strip()] = value
    return mix


@app.command()
def simulate(
    root: RootOption = None,
    leads: Annotated[int, typer.Option(help="Synthetic leads in the cohort")] = 200,
    days: Annotated[int, typer.Option(help="Virtual days to run")] = 90,
    seed: Annotated[int, typer.Option(help="Same seed, same result")] = 1,
    persona: Annotated[list[str] | None, typer.Option(
        help="Persona mix ID=SHARE, repeatable [default: every persona with a nurture "
             "journey, equally]", show_default=False)] = None,
    behaviour: Annotated[list[str] | None, typer.Option(
        help="Behaviour mix NAME=SHARE of eager, slow, never, fast_lane "
             "[default: eager=0.2 slow=0.4 never=0.3 fast_lane=0.1]",
        show_default=False)] = None,
    arrival_days: Annotated[int, typer.Option(
        help="Sign-ups spread over this many first days")] = 14,
    fit: Annotated[float, typer.Option(
        help="Share of leads whose company fits their persona (industry, size)")] = 0.7,
    tick_minutes: Annotated[int, typer.Option(
        help="Virtual minutes between scheduler ticks (at the least)")] = 60,
    start: Annotated[str, typer.Option(help="First virtual day, YYYY-MM-DD (a Monday by "
                                       "default)")] = "2026-01-05",
    database: Annotated[str | None, typer.Option(
        help="Keep the simulated data in this EMPTY database (URL), e.g. to run `ripen "
             "report` on it [default: a temporary SQLite file, removed]",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Also write an HTML report with charts to this file",
        show_default=False)] = None,
) -> None:
    """Try the journeys before they go live: synthetic leads (persona mix, behaviour
    profiles) through the real engine on a virtual clock. Prints per persona the MQL rate,
    days to MQL, mails per lead, sends deferred by policy and leads left by the slowest
    case, and the path coverage of every step and branch. Nothing is sent: mail is
    captured, webhooks stay unsent; your database is not touched."""
    import json
    from datetime import timedelta

    from rich.progress import BarColumn, Progress, TextColumn

    from engine.bootstrap import bootstrap
    from engine.clock import ManualClock
    from engine.report import day
    from engine.simulate import Spec
    from engine.simulate import simulate as run_simulation

    first = day(start, "--start").replace(hour=8)
    spec = Spec(leads=leads, days=days, seed=seed, personas=_shares(persona, "--persona"),
                behaviours=_shares(behaviour, "--behaviour") or Spec().behaviours,
                arrival_days=arrival_days, fit=fit, tick=timedelta(minutes=tick_minutes),
                start=first)
    with tempfile.TemporaryDirectory(prefix="ripen-simulate-") as scratch:
        url = database or f"sqlite:///{Path(scratch, 'simulation.db').as_posix()}"
        clock = ManualClock(first)
        ripen_app = bootstrap(_settings(root).model_copy(update={"database_url": url}),
                              clock=clock)
        console = Console(stderr=True) if as_json else out
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total} days"), console=console,
                          transient=as_json) as progress:
                task = progress.add_task(f"simulating {leads} leads", total=days)
                result = run_simulation(ripen_app, clock, spec,
                                        progress=lambda n: progress.advance(task, n))
            generated = ripen_app.wall()
        finally:
            ripen_app.dispose()
    if html is not None:
        from ripen import html_report

        assert result.report is not None
        html_report.write(html, html_report.render(
            result.report, title=f"ripen simulation (seed {seed})", generated=generated,
            simulation=result.as_json()))
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    for title, groups in (("persona", result.personas), ("behaviour", result.by_behaviour)):
        table = Table(box=box.SIMPLE, pad_edge=False)
        table.add_column(title, no_wrap=True)
        for column in ("leads", "MQL", "rate", "d→MQL", "p90", "mails", "defer", "slow",
                       "unsub"):
            table.add_column(column, justify="right", no_wrap=True)
        for name, row in groups.items():
            table.add_row(name, str(row["leads"]), str(row["mql"]),
                          f"{row['mql_rate']:.0%}",
                          *(f"{row[k]:.1f}" if row[k] is not None else "-"
                            for k in ("days_to_mql_median", "days_to_mql_p90")),
                          f"{row['mails_per_lead']:.1f}", str(row["deferred"]),
                          str(row["slowest_case"]), str(row["unsubscribed"]))
        (out if out.is_terminal else Console(highlight=False, width=110)).print(table)
    out.print("mails: " + ", ".join(f"{k} {v}" for k, v in result.mails.items())
              + "; deferred by policy: " + (", ".join(f"{k} {v}" for k, v in
                                                      result.deferred.items()) or "none"),
              markup=False, soft_wrap=True)
    for journey_id, steps in result.coverage.items():
        reached = sum(1 for step in steps if step.reached)
        out.print(f"{journey_id}: {reached} of {len(steps)} steps reached", markup=False)
    if result.unreached:
        out.print("never reached (steps, and branch outcomes never taken):", markup=False)
        for item in result.unreached:
            out.print(f"  {item}", markup=False, soft_wrap=True)
    if result.not_entered:
        out.print("journeys no simulated lead entered: " + ", ".join(result.not_entered),
                  markup=False, soft_wrap=True)
    if html is not None:
        out.print(f"HTML report written to {html}", markup=False, soft_wrap=True)
    if database is not None:
        out.print(f"the simulated data stays in {database}: `ripen report --since "
                  f"{start}` shows its funnel", markup=False, soft_wrap=True)


@routing_app.command("report")
def routing_report() -> None:
    """Handovers per rep and channel this period: count and mean grade, against tolerance."""
    import statistics

    from engine.routing import period_start

    with _ripen() as ripen_app, ripen_app.uow() as uow:
        sla = ripen_app.config.sla
        since = period_start(ripen_app.clock(), sla.routing.period)
        balance = ripen_app.handovers.balance(uow, ripen_app.clock())
    table = Table("rep", "channel", "handovers", "mean grade (A=4 … D=1)", box=box.SIMPLE)
    for rep in sla.reps:
        tally = balance.tallies.get(rep.id)
        table.add_row(rep.id, rep.channel, str(tally.count if tally else 0),
                      f"{tally.mean:.2f}" if tally else "-")
    out.print(f"since {since:%Y-%m-%d} ({sla.routing.period})", markup=False)
    out.print(table)
    counts = [t.count for t in balance.tallies.values()]
    means = [t.mean for t in balance.tallies.values()]
    if len(counts) >= 2 and statistics.mean(counts) > 0:
        spread = (max(counts) - min(counts)) / statistics.mean(counts)
        grade = (max(means) - min(means)) / statistics.mean(means)
        verdict = "within" if max(spread, grade) <= sla.routing.tolerance else "outside"
        out.print(f"spread: count {spread:.0%}, mean grade {grade:.0%} — {verdict} the "
                  f"tolerance of {sla.routing.tolerance:.0%}", markup=False)


@consent_app.command("proof")
def consent_proof(
    email: Annotated[str, typer.Argument(help="The lead's e-mail address")],
    html: Annotated[Path | None, typer.Option(help="Also write a printable HTML file")] = None,
) -> None:
    """Print the complete consent record of one lead (BGH I ZR 164/09)."""
    with _ripen() as ripen_app:
        proof = ripen_app.consent.proof(email)
        printed = ripen_app.clock().isoformat()
    out.print(f"{proof.email}: {proof.status}, created {proof.created_at.isoformat()}, "
              f"source {proof.source or '-'}, campaign {proof.campaign or '-'}",
              markup=False, soft_wrap=True)
    table = Table(title="Consent ledger", title_justify="left")
    for column in ("time (UTC)", "action", "purpose", "details"):
        table.add_column(column, overflow="fold")
    for entry in proof.entries:
        details = "\n".join(f"{k}: {v}" for k, v in entry.detail.items() if v)
        table.add_row(entry.occurred_at.isoformat(), entry.action, entry.purpose, details)
    out.print(table)
    for digest, text in proof.texts.items():
        out.print(f"text {digest[:12]}…: {text}", markup=False, soft_wrap=True)
    if html is not None:
        from ripen.api.pages import render

        html.write_text(render("proof.html", title=f"Consent proof {proof.email}", proof=proof,
                               printed_at=printed), encoding="utf-8")
        out.print(f"wrote {html}")


@gdpr_app.command("export")
def gdpr_export(
    email: Annotated[str, typer.Argument(help="The person's e-mail address")],
    output: Annotated[Path | None, typer.Option("--out", help="Write to this file "
                                                "[default: print]", show_default=False)] = None,
) -> None:
    """Everything ripen holds about one person, as JSON (Art. 15/20 GDPR)."""
    import json

    from engine import gdpr

    with _ripen() as ripen_app:
        data = gdpr.export(ripen_app.uow, email)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        out.print(f"wrote {output}")


@gdpr_app.command("erase")
def gdpr_erase(
    email: Annotated[str, typer.Argument(help="The person's e-mail address")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase one person (Art. 17 GDPR): only a hashed suppression entry remains."""
    from engine import gdpr

    if not yes and not typer.confirm(f"Erase all personal data of {email}?"):
        raise typer.Abort()
    with _ripen() as ripen_app:
        kept = gdpr.erase(ripen_app.uow, email, clock=ripen_app.clock,
                          webhooks=ripen_app.config.sla.webhooks)
    out.print(f"erased {email}; kept anonymously: {kept['consents']} consent records, "
              f"{kept['events']} events, {kept['handovers']} handovers", markup=False,
              soft_wrap=True)


@app.command()
def maintenance() -> None:
    """Run the maintenance flow once: DOI reminders, purge of unconfirmed sign-ups, outbox."""
    settings = _settings()
    _prepare_prefect(settings)
    from engine.bootstrap import bootstrap
    from flows import runtime
    from flows.tick import run_maintenance

    ripen_app = bootstrap(settings)
    runtime.use(ripen_app)
    try:
        result = run_maintenance()
    finally:
        runtime.use(None)
        ripen_app.dispose()
    out.print(f"reminders {result['reminded']}, purged {result['purged']}, "
              f"SLA escalations {result['escalated']}, webhooks {result['webhooks']}, "
              f"mail {result['mail']}", markup=False, soft_wrap=True)


PoolOption = Annotated[str, typer.Option("--pool", help="The Prefect work pool")]
DEFAULT_POOL = "ripen"


def _prefect_server() -> str:
    """The Prefect server of deployment mode (``PREFECT_API_URL``), checked to answer."""
    import httpx

    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url:
        raise RipenError("deployment mode needs a Prefect server: set PREFECT_API_URL, e.g. "
                         "http://127.0.0.1:4200/api (README: Operations guide)")
    try:
        httpx.get(f"{url}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise RipenError(f"the Prefect server at PREFECT_API_URL={url} does not answer: "
                         f"{exc}") from None
    return url


def _deployment_settings() -> Settings:
    """Deployment mode's settings: RIPEN_HOME absolute for child processes (flow runs, API
    workers start elsewhere) and RIPEN_SECRET_KEYS required (every process, on every
    machine, must sign and verify links with the same keys)."""
    settings = _settings()
    if not settings.secret_keys:
        raise RipenError("deployment mode needs RIPEN_SECRET_KEYS: the API and every worker "
                         "sign and verify links with them (at least 32 characters each, e.g. "
                         "`openssl rand -hex 32`; the same value everywhere)")
    return _absolute_home(settings)


def _absolute_home(settings: Settings) -> Settings:
    """Child processes (flow runs, API workers) start elsewhere: pass RIPEN_HOME absolute."""
    home = settings.home.resolve()
    os.environ["RIPEN_HOME"] = str(home)
    return settings.model_copy(update={"home": home})


@app.command()
def deploy(pool: PoolOption = DEFAULT_POOL) -> None:
    """Deployment mode: validate, migrate, and register the tick and maintenance flows as
    Prefect deployments on a process work pool (created if missing). Schedules come from
    RIPEN_TICK_SECONDS and RIPEN_MAINTENANCE_SECONDS; run it again after changing them."""
    settings = _deployment_settings()
    url = _prefect_server()
    from engine.bootstrap import bootstrap

    ripen_app = bootstrap(settings)  # the configuration is valid and the schema current
    ripen_app.dispose()
    from flows.deployments import CRASH_AUTOMATION, ensure_crash_automation, ensure_pool, register

    created = ensure_pool(pool)
    out.print(f"work pool {pool}: {'created' if created else 'exists'} (process) on {url}")
    made = ensure_crash_automation()
    out.print(f"automation {CRASH_AUTOMATION!r}: {'created' if made else 'exists'} (flow runs "
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
    settings = _deployment_settings()
    _prefect_server()
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
    settings = _deployment_settings()
    import uvicorn

    from engine.bootstrap import bootstrap_migrated

    bootstrap_migrated(settings).dispose()
    out.print(f"ripen {ripen.__version__} API on {host}:{port} ({workers} processes), "
              f"database {redact.url(settings.effective_database_url)}", markup=False)
    uvicorn.run("ripen.api.asgi:create", factory=True, host=host, port=port, workers=workers,
                log_level="info", proxy_headers=False,
                log_config=logs.uvicorn_config(settings.log_format))


def main() -> None:
    """Entry point: usage mistakes with Click's own message (exit 2), plain messages for user
    errors (exit 1), a log file for bugs (exit 3). Typer raises its bundled copy of Click's
    exceptions (``typer._click``), not ``click``'s: both are caught."""
    try:
        result = app(standalone_mode=False)
    except (click.exceptions.Abort, TyperAbort):
        _plain_error("aborted")
        sys.exit(1)
    except (click.ClickException, TyperClickException) as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Exit, TyperExit) as exc:
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        count = len(exc.problems)
        _plain_error(f"{exc.format()}\n{count} problem{'s' if count != 1 else ''} found")
        sys.exit(1)
    except RipenError as exc:
        _plain_error(f"error: {exc}")
        sys.exit(1)
    except Exception:
        log_file = _crash_log(traceback.format_exc())
        _plain_error(f"ripen failed unexpectedly (a bug); details are in {log_file}")
        sys.exit(3)
    sys.exit(result if isinstance(result, int) else 0)


def _plain_error(text: str) -> None:
    """Errors go out unwrapped and unstyled: one problem per line, for editors and grep."""
    sys.stdout.flush()
    print(text, file=sys.stderr, flush=True)


def _crash_log(text: str) -> Path:
    path = errorlog.record(text)
    logging.getLogger("ripen").error("unexpected error, see %s", path)
    return path
