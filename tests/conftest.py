"""Shared fixtures: databases (SQLite always, PostgreSQL when configured) and Prefect."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from engine.store import database

PG_URL = os.environ.get("RIPEN_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``postgresql_only`` (a dropped server connection, say) is not collected
    for SQLite at all, rather than collected and skipped."""
    kept, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        on_sqlite = params is not None and params.params.get("database_url") == "sqlite"
        (dropped if on_sqlite and item.get_closest_marker("postgresql_only") else kept).append(
            item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, and (in CI) a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'ripen.db'}"
        return
    admin = database.make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"ripen_test_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database.normalise_url(PG_URL)).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def migrated(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with every migration applied."""
    engine = database.make_engine(database_url)
    database.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for the whole session (it is slow to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


Figure = Callable[[str], None]


@pytest.fixture
def figure(capsys: pytest.CaptureFixture[str]) -> Figure:
    """Print a measured figure to the terminal even while pytest captures output, so CI's
    log shows it (the fault matrix, the deployment test)."""
    def show(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)
    return show


# --- a real SMTP server (aiosmtpd) on loopback ------------------------------------------

class SmtpSink:
    """Collects every message; ``answer`` can make it refuse the next ones."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.answer: str | None = None  # e.g. "451 4.3.0 try later" for DATA

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        if self.answer is not None:
            return self.answer
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 OK"

    def parsed(self) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default)  # type: ignore[misc]
                for _, _, raw in self.messages]


@contextmanager
def smtp_server(handler: object) -> Iterator[int]:
    """aiosmtpd with ``handler`` on a free loopback port (yielded) while the block runs."""
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    with smtp_server(sink) as port:
        yield sink, port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


API_KEY = "test-api-key-0123456789abcdef0123456789"


@pytest.fixture
def ripen_app(migrated: Engine, smtp: tuple[SmtpSink, int]) -> Iterator[Any]:
    """The example configuration on a fresh database, mail to the loopback SMTP server."""
    from engine.bootstrap import Ripen
    from engine.clock import ManualClock
    from engine.config.compiler import load_and_compile
    from engine.config.loader import ConfigPaths
    from engine.settings import load_settings
    from tests.factories import NOW, REPO

    _, port = smtp
    settings = load_settings(mail_url=f"smtp://127.0.0.1:{port}?starttls=no",
                             public_base_url="https://ripen.example",
                             api_keys=[API_KEY], secret_keys=["k" * 40],
                             trusted_proxies=["10.0.0.0/8"])
    app = Ripen(settings=settings, config=load_and_compile(ConfigPaths.under(REPO)),
                db=migrated, clock=ManualClock(NOW))
    return app
