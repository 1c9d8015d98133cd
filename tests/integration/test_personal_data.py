"""Personal data end to end (issue 19), with real parts: SQLite and PostgreSQL, aiosmtpd, the
HTTP app, a loopback CRM verifying with `standardwebhooks`.

One person goes the whole way — sign-up with phone consent, a journey mail and a click, the
sales fast lane (the CRM's webhook, the rep's notice), an SLA escalation, an unsubscribe — and
is erased; then every text of every table, and the SQLite files' bytes, are searched for
anything that names her.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from engine import gdpr
from engine.addresses import address_hash
from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from engine.store.tables import Event, Suppression, WebhookDelivery
from engine.webhooks import new_secret
from tests.conftest import API_KEY, SmtpSink
from tests.consent_helpers import client, confirm_path, form, text_everywhere, unsubscribe_path
from tests.factories import NOW, example_tree
from tests.integration.test_journeys import click_first_link, marketing, tick
from tests.receiver import Receiver, running

Smtp = tuple[SmtpSink, int]
SECRET = new_secret()
FAST_LANE = re.compile(r"https://ripen\.example(/fast-lane/[A-Za-z0-9_.\-]+)")
EMAIL = "ingeborg.quistorp@feinwerk.example"
PERSON = {"first_name": "Ingeborg", "last_name": "Quistorp", "company": "Quistorp Feinwerk GmbH",
          "job_title": "Leiterin Marketingkommunikation", "phone": "+49 30 5551234"}
#: What names her: none of it may be left after the erasure (case-insensitive).
TRACES = [EMAIL, "Ingeborg", "Quistorp", "Feinwerk", "Marketingkommunikation", "5551234",
          "203.0.113.77", "Firefox/140-Quistorp"]


@pytest.fixture
def crm() -> Iterator[Receiver]:
    with running(SECRET) as receiver:
        yield receiver


@pytest.fixture
def app(migrated: Engine, smtp: Smtp, crm: Receiver, tmp_path: Path) -> Ripen:
    """The example configuration; the CRM endpoint (subscribed to the lead events as the
    example is) points at the loopback receiver."""
    root = tmp_path / "ripen"
    example_tree(root)
    sla = root / "config" / "sla.yaml"
    text = sla.read_text(encoding="utf-8")
    assert "lead.erased" in text
    sla.write_text(text.replace("url: https://crm.example.com/hooks/ripen",
                                f"url: {crm.url}\n    allow_private: true"), encoding="utf-8")
    _, port = smtp
    settings = load_settings(mail_url=f"smtp://127.0.0.1:{port}?starttls=no",
                             public_base_url="https://ripen.example", api_keys=[API_KEY],
                             secret_keys=["k" * 40], trusted_proxies=["10.0.0.0/8"])
    return Ripen(settings=settings, config=load_and_compile(ConfigPaths.under(root)),
                 db=migrated, clock=ManualClock(NOW),
                 environ={"RIPEN_WEBHOOK_SECRET_CRM": SECRET})


def _the_whole_way(app: Ripen, sink: SmtpSink) -> EmailMessage:
    """Sign-up with phone consent, confirmation, a journey mail clicked, the fast lane (CRM
    webhook, rep's notice), an SLA escalation. Returns her journey mail."""
    web = client(app)
    agent = {"user-agent": "Firefox/140-Quistorp", "x-forwarded-for": "203.0.113.77"}
    web.post("/subscribe", data=form(EMAIL, persona="monika-marketing",
                                     purposes=["email_marketing", "tracking", "phone"],
                                     **PERSON), headers=agent)
    web.post(confirm_path(sink.parsed()[-1]), headers=agent)
    tick(app)
    [mail] = marketing(sink)
    click_first_link(app, mail)
    match = FAST_LANE.search(str(mail.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    assert match
    web.post(match.group(1))
    app.send_webhooks()
    app.send_mail()
    app.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    assert app.handovers.escalate_overdue()
    app.send_webhooks()
    app.send_mail()
    return mail


def _sqlite_files(app: Ripen) -> list[Path]:
    database = make_url(str(app.db.url)).database
    assert database is not None
    return [path for path in (Path(database), Path(database + "-wal"),
                              Path(database + "-shm")) if path.exists()]


def test_an_erased_person_leaves_nothing_behind(app: Ripen, smtp: Smtp,
                                                crm: Receiver) -> None:
    """After the whole way and an unsubscribe, `gdpr erase`: no table's text, and none of
    the SQLite files' bytes, holds her address, names, company, title, phone, IP or user
    agent — only the suppression hash remains; the CRM heard `lead.unsubscribed` and then
    `lead.erased` with nothing but the ids it had."""
    sink, _ = smtp
    mail = _the_whole_way(app, sink)
    found = "\n".join(value for _, _, value in text_everywhere(app.db)).lower()
    assert all(trace.lower() in found for trace in TRACES[:6])  # the scan can find them
    client(app).post(unsubscribe_path(mail),
                     content=b"List-Unsubscribe=One-Click",
                     headers={"content-type": "application/x-www-form-urlencoded"})
    app.send_webhooks()

    gdpr.erase(app.uow, EMAIL, clock=app.clock, webhooks=app.config.sla.webhooks)
    app.send_webhooks()

    left = [(table, column, value) for table, column, value in text_everywhere(app.db)
            if any(trace.lower() in value.lower() for trace in TRACES)]
    assert left == []
    for path in (_sqlite_files(app) if app.db.dialect.name == "sqlite" else []):
        content = path.read_bytes().lower()
        assert [t for t in TRACES if t.lower().encode() in content] == [], path.name
    with app.uow() as uow:
        [kept] = uow.session.exec(select(Suppression)).all()
    # her unsubscribe's reason stays (erasure does not weaken a suppression)
    assert (kept.email_hash, kept.reason) == (address_hash(EMAIL), "unsubscribed")
    events = [e["type"] for e in crm.verified()]
    assert events == ["handover.created", "handover.escalated", "lead.unsubscribed",
                      "consent.withdrawn", "lead.erased"]
    [created, *_, erased] = crm.verified()
    assert erased["data"] == {"lead": created["data"]["lead"]["id"],
                              "handovers": [created["data"]["handover_id"]],
                              "erased_at": erased["data"]["erased_at"]}


def test_the_export_has_every_row_and_who_received_the_data(app: Ripen, smtp: Smtp) -> None:
    """The export lists what the erasure would touch — mails about her (the rep's notice,
    the escalation), webhooks with their payloads, links, events — and the recipients."""
    sink, _ = smtp
    _the_whole_way(app, sink)
    data = gdpr.export(app.uow, EMAIL)
    categories = sorted(m["category"] for m in data["mails"])
    assert categories == ["doi", "notification", "notification", "nurture"]
    assert {w["event"] for w in data["webhooks"]} == {"handover.created",
                                                      "handover.escalated"}
    assert all(w["payload"] for w in data["webhooks"])
    assert {link["kind"] for link in data["tracked_links"]} >= {"content"}
    assert {e["type"] for e in data["events"]} >= {"click", "contact_request"}
    recipients = {(r["recipient"], r["what"]) for r in data["recipients"]}
    rep = data["handovers"][0]["rep_id"]
    assert ("webhook endpoint crm", "handover.created") in recipients
    assert (f"rep {rep}", "handover") in recipients
    rep_mail = next(m for m in data["mails"] if m["category"] == "notification")
    assert (rep_mail["to"], rep_mail["subject"]) in recipients
    assert "Ingeborg Quistorp" in rep_mail["subject"]


def test_the_crm_hears_only_of_leads_it_received(app: Ripen, smtp: Smtp,
                                                 crm: Receiver) -> None:
    """A lead never handed over unsubscribes: nothing goes to the CRM (it has no copy)."""
    sink, _ = smtp
    web = client(app)
    web.post("/subscribe", data=form("quiet@example.com", persona="monika-marketing"))
    web.post(confirm_path(sink.parsed()[-1]))
    web.post(unsubscribe_path(sink.parsed()[-1]), data={"choice": "all"})
    app.send_webhooks()
    assert crm.requests == []
    with app.uow() as uow:
        assert uow.session.exec(select(WebhookDelivery)).all() == []


def test_the_link_of_an_erased_person_records_nothing(app: Ripen, smtp: Smtp) -> None:
    """After the erasure her old mail's link still leads to the content, and nobody's click
    is recorded on the erased lead any more (no IP, no user agent, no event)."""
    sink, _ = smtp
    web = client(app)
    web.post("/subscribe", data=form(EMAIL, persona="monika-marketing"))
    web.post(confirm_path(sink.parsed()[-1]))
    tick(app)
    [mail] = marketing(sink)
    gdpr.erase(app.uow, EMAIL, clock=app.clock)
    with app.uow() as uow:
        before = len(uow.session.exec(select(Event)).all())
    location = click_first_link(app, mail)
    assert location.startswith("https://")
    with app.uow() as uow:
        assert len(uow.session.exec(select(Event)).all()) == before


def test_head_is_answered_on_every_public_page_without_side_effects(app: Ripen,
                                                                    smtp: Smtp) -> None:
    """Link checkers send HEAD: each public GET route answers it as GET would, without a
    body; a HEAD of a tracked link or an open pixel records nothing."""
    sink, _ = smtp
    web = client(app)
    web.post("/subscribe", data=form("head@example.com", persona="monika-marketing",
                                     purposes=["email_marketing", "tracking"]))
    doi = sink.parsed()[-1]
    web.post(confirm_path(doi))
    tick(app)
    [mail] = marketing(sink)
    html = str(mail.get_body(("html",)).get_content())  # type: ignore[union-attr]
    text = str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    click = re.search(r"https://ripen\.example(/c/[A-Za-z0-9_.\-]+)", text)
    pixel = re.search(r"https://ripen\.example(/o/[A-Za-z0-9_.\-]+\.gif)", html)
    fast = FAST_LANE.search(text)
    assert click is not None
    assert pixel is not None
    assert fast is not None
    with app.uow() as uow:
        events = len(uow.session.exec(select(Event)).all())
    paths: dict[str, int] = {"/subscribe": 200, "/health": 200, "/health/live": 200,
                             confirm_path(doi): 200, unsubscribe_path(mail): 200,
                             fast.group(1): 200, click.group(1): 302, pixel.group(1): 200,
                             "/c/not-a-token": 404}
    for path, status in paths.items():
        response = web.head(path, follow_redirects=False)
        assert (response.status_code, response.content) == (status, b""), path
    with app.uow() as uow:
        assert len(uow.session.exec(select(Event)).all()) == events  # no click, no open
