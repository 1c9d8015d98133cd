"""What every command shares: the root app and its groups, settings and paths, the
embedded Prefect's preparation, the console, the one error boundary's helpers, output as
JSON."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

import ripen
from engine.bootstrap import Ripen
from engine.config.loader import ConfigPaths
from engine.errors import RipenError
from engine.settings import Settings, load_settings
from ripen import errorlog, logs

T = TypeVar("T")


app = typer.Typer(
    name="ripen",
    help="ripen: B2B lead nurturing. Personas, content and journeys in YAML; journeys run in "
    "a Prefect flow; ripe leads go to sales through a signed webhook.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode="markdown",
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


def group(name: str, help: str) -> typer.Typer:
    """A command group (``ripen NAME …``): a sub-app that shows its help when called bare."""
    sub = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


db_app = group("db", "The database: migrations.")
consent_app = group("consent", "Consent records (double opt-in proof).")
bounces_app = group("bounces", "Asynchronous bounces and spam complaints.")
handovers_app = group("handovers", "Handovers to sales and their signed webhook deliveries.")
routing_app = group("routing", "Lead routing to reps.")
gdpr_app = group("gdpr", "GDPR: export or erase one person's data.")
outbox_app = group("outbox", "The mail outbox: what was sent, what waits, what is unknown.")
leads_app = group("leads", "One lead's timeline; leads held back by a failure of their own: "
                           "list and retry.")
app.add_typer(leads_app, name="lead", hidden=True)  # `ripen lead show EMAIL` reads naturally
journeys_app = group("journeys", "Journeys at run time: pause and resume them.")
audit_app = group("audit", "Audits of the configuration (content gaps).")
personas_app = group("personas", "Personas: which one a lead would get, and why.")


out = Console(highlight=False)


RootOption = Annotated[
    Path | None,
    typer.Option("--root", "-C", help="Folder holding config/, content/ and templates/email/ "
                 "[default: $RIPEN_HOME or the current folder]", show_default=False),
]


def load_cli_settings(root: Path | None = None) -> Settings:
    return load_settings(home=root) if root is not None else load_settings()


def config_paths(root: Path | None) -> ConfigPaths:
    return ConfigPaths.under(Path(load_cli_settings(root).home))


def prepare_prefect(settings: Settings) -> None:
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


def known(items: Mapping[str, T], key: str, what: str) -> T:
    """``items[key]``, or a plain error naming what exists."""
    if key not in items:
        shown = ", ".join(sorted(items)[:12]) + (" …" if len(items) > 12 else "")
        raise RipenError(f'unknown {what} "{key}"; known: {shown}')
    return items[key]


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RipenError(f'--now "{text}" is not an ISO 8601 time, e.g. 2026-11-23T09:00:00Z') \
            from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def terminated(signum: int, frame: object) -> None:
    raise SystemExit(0)


def say(settings: Settings) -> Callable[[str], None]:
    """Where `ripen run` says what it does: the console, or in JSON mode the log (one JSON
    object a line, nothing else)."""
    if settings.log_format == "json":
        return logging.getLogger("ripen.run").info
    return lambda text: out.print(text, markup=False, soft_wrap=True)


def warn_generated_key(ripen_app: Ripen) -> None:
    from engine.bootstrap import GENERATED_KEY_WARNING

    if ripen_app.signing_keys != "generated":
        return
    if ripen_app.settings.log_format == "json":
        logging.getLogger("ripen.run").warning(GENERATED_KEY_WARNING)
    else:
        plain_error(f"WARNING: {GENERATED_KEY_WARNING}")


@contextmanager
def open_ripen() -> Iterator[Ripen]:
    from engine.bootstrap import bootstrap

    ripen_app = bootstrap(load_cli_settings())
    try:
        yield ripen_app
    finally:
        ripen_app.dispose()


PoolOption = Annotated[str, typer.Option("--pool", help="The Prefect work pool")]


DEFAULT_POOL = "ripen"


def prefect_server() -> str:
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


def deployment_settings() -> Settings:
    """Deployment mode's settings: RIPEN_HOME absolute for child processes (flow runs, API
    workers start elsewhere) and RIPEN_SECRET_KEYS required (every process, on every
    machine, must sign and verify links with the same keys)."""
    settings = load_cli_settings()
    if not settings.secret_keys:
        raise RipenError("deployment mode needs RIPEN_SECRET_KEYS: the API and every worker "
                         "sign and verify links with them (at least 32 characters each, e.g. "
                         "`openssl rand -hex 32`; the same value everywhere)")
    return absolute_home(settings)


def absolute_home(settings: Settings) -> Settings:
    """Child processes (flow runs, API workers) start elsewhere: pass RIPEN_HOME absolute."""
    home = settings.home.resolve()
    os.environ["RIPEN_HOME"] = str(home)
    return settings.model_copy(update={"home": home})


def plain_error(text: str) -> None:
    """Errors go out unwrapped and unstyled: one problem per line, for editors and grep."""
    sys.stdout.flush()
    print(text, file=sys.stderr, flush=True)


def crash_log(text: str) -> Path:
    """Record a bug's traceback under RIPEN_HOME's var/log (the folder `ripen run` logs
    to), or under the current folder when the settings themselves are unreadable."""
    try:
        folder = load_settings().var_dir / "log"
    except Exception:  # the settings may be what is broken
        folder = errorlog.DEFAULT_FOLDER
    path = errorlog.record(text, folder)
    logger = logging.getLogger("ripen")
    if logger.hasHandlers():  # `ripen run`'s log; a plain command says it on stderr only
        logger.error("unexpected error, see %s", path)
    return path
