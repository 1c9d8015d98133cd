"""A person signs up in a real browser (Debian Chromium via Playwright) and confirms."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.engine import Engine

from engine.bootstrap import Ripen
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from ripen.api.app import create_app
from tests.conftest import SmtpSink, free_port
from tests.factories import REPO

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@contextmanager
def serving(app: Ripen, port: int | None = None) -> Iterator[str]:
    """The app under uvicorn on loopback (on ``port``, or a free one); yields its address."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served(migrated: Engine, smtp: tuple[SmtpSink, int]) -> Iterator[tuple[Ripen, str]]:
    """The app under uvicorn on loopback; its links point at that address."""
    _, smtp_port = smtp
    port = free_port()
    app = Ripen(settings=load_settings(mail_url=f"smtp://127.0.0.1:{smtp_port}?starttls=no",
                                       public_base_url=f"http://127.0.0.1:{port}",
                                       secret_keys=["b" * 40]),
                config=load_and_compile(ConfigPaths.under(REPO)), db=migrated)
    with serving(app, port) as base:
        yield app, base


def _wait_for_mail(sink: SmtpSink, count: int) -> None:
    deadline = time.monotonic() + 15
    while len(sink.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sink.messages) >= count


@pytest.mark.slow
def test_a_person_subscribes_and_confirms_in_chromium(served: tuple[Ripen, str],
                                                      smtp: tuple[SmtpSink, int]) -> None:
    """Form → DOI mail at a real SMTP server → link → page with button → click → proof."""
    from playwright.sync_api import sync_playwright

    app, base = served
    sink, _ = smtp
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/subscribe?campaign=browser-test")
            page.get_by_label("E-Mail-Adresse (Pflicht)").fill("browser@example.com")
            page.get_by_label("Vorname").fill("Bruno")
            page.get_by_label("Position").fill("Marketingleiter")
            page.locator("#consent_email").check()
            page.get_by_role("button", name="Anmelden").click()
            page.get_by_role("heading", name="Fast geschafft!").wait_for()

            _wait_for_mail(sink, 1)
            [message] = sink.parsed()
            body = message.get_body(("plain",))
            assert body is not None
            match = re.search(rf"{re.escape(base)}/confirm/\S+", body.get_content())
            assert match, body.get_content()

            page.goto(match.group(0))
            button = page.get_by_role("button", name="Ja, Anmeldung bestätigen")
            button.wait_for()
            with app.uow() as uow:
                pending = uow.lead_by_email("browser@example.com")
            assert pending is not None
            assert pending.status == "pending"
            button.click()
            page.get_by_role("heading", name="Vielen Dank!").wait_for()
            page.screenshot(path=str(ARTIFACTS / "doi-confirmed.png"))
            user_agent = page.evaluate("navigator.userAgent")
        finally:
            browser.close()

    proof = app.consent.proof("browser@example.com")
    assert proof.status == "confirmed"
    assert [e.action for e in proof.entries] == ["requested", "doi_sent", "confirmed"]
    requested, sent, confirmed = proof.entries
    assert requested.detail["campaign"] == "browser-test"
    assert requested.detail["user agent"] == user_agent
    assert requested.detail["IP"] == "127.0.0.1"
    assert sent.detail["DOI Message-ID"] == message["Message-ID"]
    assert (confirmed.detail["IP"], confirmed.detail["user agent"]) == ("127.0.0.1", user_agent)
    assert proof.texts[requested.detail["text SHA-256"]].startswith("Ja, ich möchte")
    assert Path(ARTIFACTS / "doi-confirmed.png").stat().st_size > 0
