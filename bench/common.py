"""What every scenario needs: a fresh database, the example config, an SMTP sink, a clock."""

from __future__ import annotations

import atexit
import os
import re
import resource
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import CompiledConfig, load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from engine.store import database

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
PG_ADMIN = os.environ.get("RIPEN_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
#: A Tuesday, 10:00 in Berlin: inside business hours, no holiday, so nothing is deferred.
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SECRET_KEY = "bench-" + "k" * 40


def peak_rss_mib() -> float:
    """Peak resident set of this process (each scenario runs in its own process)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def fresh_database(backend: str, *, migrate: bool = True) -> Iterator[Engine]:
    """A new, migrated database: a SQLite file, or a new PostgreSQL database (dropped after);
    left empty with ``migrate=False``."""
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="ripen-bench-"))
        engine = database.make_engine(f"sqlite:///{folder / 'bench.db'}")
        try:
            if migrate:
                database.upgrade(engine)
            yield engine
        finally:
            engine.dispose()
            shutil.rmtree(folder, ignore_errors=True)
        return
    admin = database.make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"ripen_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database.normalise_url(PG_ADMIN)).set(database=name)
    engine = database.make_engine(url.render_as_string(hide_password=False))
    try:
        if migrate:
            database.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


#: The recycling journey's copies S4 adds, so that 20 journeys have due leads in one tick.
RECYCLE_COPIES = 17


def bench_config(*, webhook_url: str | None = None, recycle_copies: int = 0) -> CompiledConfig:
    """The example configuration without the relay rate limit (we measure us, not a bucket);
    with ``webhook_url`` the CRM endpoint points there (loopback allowed); with
    ``recycle_copies`` that many copies of the recycling journey (``wiedervorlage-2`` …)."""
    config = load_and_compile(ConfigPaths.under(
        bench_home(webhook_url=webhook_url, recycle_copies=recycle_copies)))
    assert config.mail.rate_limit is None, "the bench config must not pace the relay"
    return config


def bench_home(*, webhook_url: str | None = None, recycle_copies: int = 0) -> Path:
    """A RIPEN_HOME holding ``bench_config``'s files (removed when the process ends)."""
    root = Path(tempfile.mkdtemp(prefix="ripen-bench-config-"))
    for folder in ("config", "content", "templates"):
        shutil.copytree(REPO / folder, root / folder)
    recycle = (root / "config" / "journeys" / "wiedervorlage.yaml").read_text()
    for n in range(2, 2 + recycle_copies):
        (root / "config" / "journeys" / f"wiedervorlage-{n}.yaml").write_text(
            recycle.replace("id: wiedervorlage", f"id: wiedervorlage-{n}", 1))
    mail = root / "config" / "mail.yaml"
    mail.write_text(re.sub(r"(?m)^rate_limit:.*\n(?:[ \t]+.*\n)*", "", mail.read_text()))
    if webhook_url is not None:
        sla = root / "config" / "sla.yaml"
        sla.write_text(sla.read_text().replace(
            "url: https://crm.example.com/hooks/ripen",
            f"url: {webhook_url}\n    allow_private: true"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # templates load lazily
    return root


def app(engine: Engine, smtp_port: int, *, config: CompiledConfig | None = None,
        environ: dict[str, str] | None = None) -> Ripen:
    settings = load_settings(mail_url=f"smtp://127.0.0.1:{smtp_port}?starttls=no",
                             public_base_url="https://ripen.example",
                             secret_keys=[SECRET_KEY], api_keys=["bench-api-key-" + "x" * 20])
    return Ripen(settings=settings, config=config or bench_config(), db=engine,
                 clock=ManualClock(NOW), environ=environ or {})


# --- the SMTP sink --------------------------------------------------------------------------

@dataclass(frozen=True)
class Sink:
    name: str
    port: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postfix_sink_binary() -> Path | None:
    """Postfix's C smtp-sink, unpacked from Debian's package (not installed) into .cache."""
    binary = CACHE / "postfix" / "usr" / "sbin" / "smtp-sink"
    if binary.exists():
        return binary
    work = CACHE / "download"
    work.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "postfix"], cwd=work, check=True,  # noqa: S607
                       capture_output=True, timeout=120)
        package = next(work.glob("postfix_*.deb"))
        subprocess.run(["dpkg", "-x", str(package), str(CACHE / "postfix")],  # noqa: S603, S607
                       check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError, StopIteration):
        return None
    return binary if binary.exists() else None


@contextmanager
def smtp_sink(dump: Path | None = None) -> Iterator[Sink]:
    """Postfix's smtp-sink on loopback (accepts and discards); aiosmtpd if it is missing.

    With ``dump``, Postfix's sink appends every message it accepts to that file (its folder
    must be writable by ``nobody``), so that what arrived can be counted; it is refused with
    the fallback, which could not keep up."""
    binary = postfix_sink_binary()
    port = free_port()
    if binary is None and dump is not None:
        raise RuntimeError("counting received mail needs Postfix's smtp-sink (apt-get download "
                           "postfix failed)")
    if binary is not None:
        env = {**os.environ, "LD_LIBRARY_PATH": str(binary.parent.parent / "lib" / "postfix")}
        options = ["-D", str(dump)] if dump is not None else []
        process = subprocess.Popen([str(binary), "-u", "nobody", *options,  # noqa: S603
                                    f"127.0.0.1:{port}", "1000"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(port)
            yield Sink("postfix smtp-sink", port)
        finally:
            process.terminate()
            process.wait(timeout=10)
        return
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server: object, session: object,
                              envelope: object) -> str:
            return "250 OK"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Sink("aiosmtpd (fallback: smtp-sink unavailable)", port)
    finally:
        controller.stop()


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the SMTP sink did not start on port {port}")
