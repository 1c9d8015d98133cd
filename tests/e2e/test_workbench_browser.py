"""The marketer's workbench in real Chromium: the login keeps an anonymous visitor out; a
journey's diagram shows counts that match the database; a step lists its leads; a lead's
page tells its story. Screenshots go to test-artifacts/ (the README's come from here)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import text
from sqlalchemy.engine import Engine

from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from tests.conftest import API_KEY, SmtpSink
from tests.consent_helpers import client
from tests.e2e.test_signup_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serving
from tests.factories import NOW, REPO
from tests.integration.test_journeys import click_first_link, confirmed_lead, marketing, tick

JOURNEY = "monika-marketing"
PEOPLE = ("anna@example.com", "bert@example.com", "cara@example.com")
STORY = "dora@example.com"  # DOI → mails → click → handover → reject → recycle


@pytest.fixture
def workbench(migrated: Engine, smtp: tuple[SmtpSink, int]) -> Iterator[tuple[Ripen, str]]:
    """Three confirmed leads, one tick (three INF mails), Anna clicked hers; the API under
    uvicorn on loopback."""
    sink, smtp_port = smtp
    app = _app(migrated, smtp_port)
    for email in PEOPLE:
        confirmed_lead(app, sink, email, persona=JOURNEY, first_name=email[:4].title())
    tick(app)
    mails = marketing(sink)
    assert len(mails) == 3
    click_first_link(app, next(m for m in mails if m["To"] == PEOPLE[0]))
    tick(app)
    with serving(app) as base:
        yield app, base


def _app(migrated: Engine, smtp_port: int) -> Ripen:
    return Ripen(settings=load_settings(mail_url=f"smtp://127.0.0.1:{smtp_port}?starttls=no",
                                        public_base_url="https://ripen.example",
                                        api_keys=[API_KEY], secret_keys=["w" * 40]),
                 config=load_and_compile(ConfigPaths.under(REPO)), db=migrated,
                 clock=ManualClock(NOW))


def _database_counts(app: Ripen) -> dict[str, Counter[str]]:
    """The same figures read with plain SQL: waiting and quarantined enrollments per step,
    mails of the step sent (the step is the third part of the outbox key)."""
    counts: dict[str, Counter[str]] = {}
    with app.db.connect() as connection:
        for step, status, number in connection.execute(text(
                "SELECT step_id, status, count(*) FROM enrollment WHERE journey_id = :j "
                "AND status IN ('active', 'quarantined') GROUP BY step_id, status"),
                {"j": JOURNEY}):
            key = "active" if status == "active" else "quarantined"
            counts.setdefault(step, Counter())[key] += number
        for (key,) in connection.execute(text(
                "SELECT idempotency_key FROM mail_outbox WHERE status = 'sent' AND "
                "idempotency_key LIKE :prefix"), {"prefix": f"journey:{JOURNEY}@%"}):
            counts.setdefault(key.split(":")[2], Counter())["sent"] += 1
    return counts


def _shown_counts(page: Page) -> dict[str, Counter[str]]:
    shown: dict[str, Counter[str]] = {}
    for box in page.locator(".step").all():
        step = box.get_attribute("data-step") or ""
        figures = Counter({name: int(re.match(r"\d+", box.locator(
            f'[data-count="{name}"]').inner_text()).group(0))  # type: ignore[union-attr]
            for name in ("active", "quarantined", "sent")})
        if +figures:
            shown[step] = +figures
    return shown


def test_the_workbench_shows_live_counts_a_step_and_a_lead_behind_its_login(
        workbench: tuple[Ripen, str]) -> None:
    app, base = workbench
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            # An anonymous visitor sees the login, never the journey.
            page.goto(f"{base}/workbench/journeys/{JOURNEY}")
            assert "/workbench/login?next=" in page.url
            assert page.locator(".step").count() == 0
            page.fill("#key", "not-the-key")
            page.click("button[type=submit]")
            assert "not one of the API keys" in page.inner_text("[role=alert]")
            assert page.locator(".step").count() == 0

            page.fill("#key", API_KEY)
            page.click("button[type=submit]")
            page.wait_for_url(f"**/workbench/journeys/{JOURNEY}")
            assert "Monika Marketing" in page.inner_text("h1")
            expected = _database_counts(app)
            assert sum(c["sent"] for c in expected.values()) == 3
            assert _shown_counts(page) == expected
            # Anna clicked: the INF mail's step shows 1 click of 3 mails.
            intro = page.locator('.step[data-step="inf-intro"] [data-count="clicked"]')
            assert intro.inner_text() == "1 (33 %)"
            assert "exit rule: 1× click/download on INF content → BEF" in page.inner_text(
                "#stage-INF")
            assert "slowest case: 60d without engagement" in page.inner_text(".slowest")
            page.screenshot(path=str(ARTIFACTS / "workbench-journey.png"), full_page=True)

            # A step with waiting leads lists them; one leads to her timeline.
            waiting = max(expected, key=lambda s: expected[s]["active"])
            page.click(f'.step[data-step="{waiting}"] .id a')
            rows = page.locator("tbody tr")
            assert rows.count() == expected[waiting]["active"]
            page.click("text=bert@example.com")
            assert page.inner_text("h1") == "bert@example.com"
            kinds = [row.get_attribute("data-kind") for row in page.locator("tr.moment").all()]
            assert kinds[0] == "consent"
            assert {"journey", "stage", "mail"} <= set(kinds)

            # The search finds Anna, and her timeline shows her click and the move to BEF.
            page.goto(f"{base}/workbench/leads?q=ANNA")
            page.click("text=anna@example.com")
            story = page.inner_text("main")
            assert "entered BEF" in story
            assert re.search(r"click mm-\S+", story)
            page.screenshot(path=str(ARTIFACTS / "workbench-lead.png"), full_page=True)

            page.goto(f"{base}/workbench")
            row = page.locator(f'tr[data-journey="{JOURNEY}"]')
            assert row.locator('[data-count="sent"]').inner_text() == "3"
            page.goto(f"{base}/workbench/content")
            assert page.locator("td.gap").count() == 0  # the shipped content has no gap

            # Signing out ends the session.
            page.goto(f"{base}/workbench")
            page.click("text=Sign out")
            page.goto(f"{base}/workbench/journeys/{JOURNEY}")
            assert "/workbench/login" in page.url
        finally:
            browser.close()


def test_a_forged_or_foreign_session_and_an_open_redirect_are_refused(
        workbench: tuple[Ripen, str]) -> None:
    """Without the cookie the pages redirect (303) to the login; a forged cookie too; the
    `next` of the login stays inside the workbench; a script may use the Bearer key."""
    import httpx

    _, base = workbench
    with httpx.Client(base_url=base, follow_redirects=False) as web:
        anonymous = web.get("/workbench")
        assert (anonymous.status_code, anonymous.headers["location"]) == (
            303, "/workbench/login?next=%2Fworkbench")
        web.cookies.set("ripen_workbench", "eyJ4Ijoi.Zm9v.YmFy")
        forged = web.get("/workbench")
        assert forged.status_code == 303
        web.cookies.clear()
        away = web.post("/workbench/login", data={"key": API_KEY,
                                                  "next": "https://evil.example/"})
        assert (away.status_code, away.headers["location"]) == (303, "/workbench")
        cookie = away.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/workbench" in cookie
        scripted = web.get("/workbench", headers={"authorization": f"Bearer {API_KEY}"})
        assert scripted.status_code == 200
        assert "Monika Marketing" in scripted.text
        missing = web.get("/workbench/journeys/nope",
                          headers={"authorization": f"Bearer {API_KEY}"})
        assert missing.status_code == 404


@pytest.fixture
def story(migrated: Engine, smtp: tuple[SmtpSink, int]) -> Iterator[tuple[Ripen, str]]:
    """Dora's whole story: DOI, her first mail, a click, the fast lane to sales, a
    rejection, and after the cool-down the recycling journey's first mail."""
    sink, smtp_port = smtp
    app = _app(migrated, smtp_port)
    confirmed_lead(app, sink, STORY, persona=JOURNEY, first_name="Dora")
    tick(app)
    first = next(m for m in marketing(sink) if m["To"] == STORY)
    click_first_link(app, first)
    web = client(app)
    fast = re.search(r"https://ripen\.example(/fast-lane/[\w.\-]+)",
                     str(first.get_body(("plain",)).get_content()))
    assert fast
    web.post(fast.group(1))
    notice = next(m for m in sink.parsed() if "Dora" in str(m["Subject"]))
    answer = re.search(r"https://ripen\.example(/h/[\w.\-]+)",
                       str(notice.get_body(("plain",)).get_content()))
    assert answer
    web.post(answer.group(1), data={"decision": "reject:not_ready", "note": "zu früh"})
    before = len([m for m in marketing(sink) if m["To"] == STORY])
    for _ in range(45):
        app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
        tick(app)
        if len([m for m in marketing(sink) if m["To"] == STORY]) > before:
            break
    assert len([m for m in marketing(sink) if m["To"] == STORY]) > before
    with serving(app) as base:
        yield app, base


def test_a_lead_page_tells_the_whole_story_in_order(story: tuple[Ripen, str]) -> None:
    _, base = story
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/workbench/leads?q=dora")
            assert "/workbench/login" in page.url
            page.fill("#key", API_KEY)
            page.click("button[type=submit]")
            page.wait_for_url("**/workbench/leads?q=dora")
            page.click(f"text={STORY}")
            journeys = [row.get_attribute("data-journey") for row in
                        page.locator("tr[data-journey]").all()]
            assert journeys == [JOURNEY, "wiedervorlage"]
            assert "exited: rejected:not_ready" in page.inner_text(
                f'tr[data-journey="{JOURNEY}"]')
            whats = [row.locator("td").nth(2).inner_text()
                     for row in page.locator("tr.moment").all()]
            order = [whats.index("email_marketing confirmed"),
                     next(i for i, w in enumerate(whats) if w.startswith("nurture: ")),
                     next(i for i, w in enumerate(whats) if w.startswith("click ")),
                     next(i for i, w in enumerate(whats) if w.startswith("handed to ")),
                     whats.index("sales rejected (not_ready)"),
                     whats.index("joined wiedervorlage")]
            assert order == sorted(order)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "workbench-story.png"), full_page=True)
        finally:
            browser.close()


def test_an_address_that_guesses_keys_is_locked_out_for_a_while(
        migrated: Engine, smtp: tuple[SmtpSink, int]) -> None:
    """Ten wrong keys from one address: the eleventh attempt, even with the right key, gets
    429 with Retry-After; after 15 minutes the right key works; another address was never
    locked out."""
    _, smtp_port = smtp
    app = _app(migrated, smtp_port)
    web = client(app)
    for _ in range(10):
        wrong = web.post("/workbench/login", data={"key": "guess"}, follow_redirects=False)
        assert wrong.status_code == 401
    locked = web.post("/workbench/login", data={"key": API_KEY}, follow_redirects=False)
    assert locked.status_code == 429
    assert "try again in 15 min" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    assert "set-cookie" not in locked.headers
    app.clock.advance(timedelta(minutes=15, seconds=1))  # type: ignore[attr-defined]
    again = web.post("/workbench/login", data={"key": API_KEY}, follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["set-cookie"].startswith("ripen_workbench=")


def test_every_api_process_counts_the_same_failed_sign_ins(
        migrated: Engine, smtp: tuple[SmtpSink, int]) -> None:
    """Two API processes (two apps on one database; `ripen api` starts two): five wrong keys
    at each lock the address out at both. The failures are kept for the lockout window
    only, and a sign-in with the right key forgets the address's."""
    _, smtp_port = smtp
    apps = [_app(migrated, smtp_port), _app(migrated, smtp_port)]
    webs = [client(app) for app in apps]

    def sign_in(web: int, key: str) -> int:
        return webs[web].post("/workbench/login", data={"key": key},
                              follow_redirects=False).status_code

    def kept() -> int:
        with migrated.connect() as connection:
            return int(connection.execute(
                text("SELECT count(*) FROM sign_in_failure")).scalar_one())

    assert [sign_in(n % 2, "guess") for n in range(10)] == [401] * 10
    assert (sign_in(0, API_KEY), sign_in(1, API_KEY)) == (429, 429)
    for app in apps:
        app.clock.advance(timedelta(minutes=15, seconds=1))  # type: ignore[attr-defined]
    assert sign_in(1, "guess") == 401
    assert kept() == 1  # the ten older ones are gone with it
    assert sign_in(0, API_KEY) == 303
    assert kept() == 0
