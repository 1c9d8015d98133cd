"""The hostile review's second pass (issue 20, findings 2, 4, 6 and 7), each reproduced on
SQLite and PostgreSQL through the HTTP app: ordinary input never gives 500, anonymous
clients are refused before their body is read, bodies have limits, API pushes have limits
of their own, dates out of range are refused, the SSRF guard pins what it checked."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from engine.bootstrap import Ripen
from engine.importer import import_csv
from engine.store.tables import Lead, MailOutbox, WebhookDelivery
from engine.webhooks import WebhookSender, new_secret
from ripen.api.guard import Guard
from tests.conftest import API_KEY, SmtpSink
from tests.consent_helpers import client, form
from tests.receiver import running

Smtp = tuple[SmtpSink, int]
KEY = {"authorization": f"Bearer {API_KEY}"}
LONG = "x" * 150


def _lead(app: Ripen, email: str) -> Lead | None:
    with app.uow() as uow:
        return uow.lead_by_email(email)


@pytest.mark.parametrize(("path", "fields", "status", "error"), [
    ("/subscribe", {"language": "deu"}, 422, 'language "deu" is not a language code'),
    ("/subscribe", {"language": "x" * 5000}, 422, "is not a language code"),
    ("/subscribe", {"first_name": LONG}, 422, "first_name is too long (150 characters, "
                                              "at most 100)"),
    ("/subscribe", {"last_name": LONG}, 422, "last_name is too long"),
    ("/subscribe", {"phone": "1" * 60}, 422, "phone is too long (60 characters, at most 50)"),
    ("/subscribe", {"campaign": LONG}, 422, "campaign is too long (150 characters, at most "
                                            "120)"),
    ("/subscribe", {"company": "y" * 250}, 422, "company is too long"),
    ("/api/leads", {"form": "f" * 200}, 422, "form is too long (200 characters, at most "
                                             "120)"),
    ("/api/leads", {"consent_version": "v" * 50}, 422, "consent_version is too long"),
])
def test_ordinary_input_gets_a_reason_never_a_500(ripen_app: Ripen, smtp: Smtp, path: str,
                                                 fields: dict[str, Any], status: int,
                                                 error: str) -> None:
    """Each value over its column's length is refused with the field and its limit, and
    nothing is stored (on PostgreSQL it used to be StringDataRightTruncation, a 500)."""
    response = client(ripen_app).post(path, json=form("long@example.com", **fields),
                                      headers=KEY)
    assert (response.status_code, error in response.json()["error"]) == (status, True), \
        response.text
    assert _lead(ripen_app, "long@example.com") is None


def test_a_language_with_a_region_is_stored_as_its_language(ripen_app: Ripen,
                                                            smtp: Smtp) -> None:
    """"en-US" (as browsers send it) is English: accepted, stored as "en"."""
    response = client(ripen_app).post("/subscribe", json=form("us@example.com",
                                                              language="en-US"))
    assert response.status_code == 202
    lead = _lead(ripen_app, "us@example.com")
    assert lead is not None
    assert lead.language == "en"


def test_a_bad_csv_row_never_stops_the_rows_after_it(ripen_app: Ripen, smtp: Smtp,
                                                     tmp_path: Path) -> None:
    """Row 2 of 3 with a 150-character name is refused with its line; rows 1 and 3 are
    imported (it used to stop the import with "a bug" on PostgreSQL)."""
    csv = tmp_path / "fair.csv"
    csv.write_text("email,first_name,phone\n"
                   "one@example.com,Ann,+49 89 1234\n"
                   f"two@example.com,{LONG},\n"
                   "three@example.com,Cem,\n", encoding="utf-8")
    summary = import_csv(csv, ripen_app.consent, source="trade_fair",
                         consent_version="2026-11")
    assert summary.imported == 2
    assert summary.refused == [(3, "first_name is too long (150 characters, at most 100)")]
    assert _lead(ripen_app, "three@example.com") is not None
    one = _lead(ripen_app, "one@example.com")
    assert one is not None
    assert one.phone == "+49 89 1234"  # a phone number may start with +


def test_anonymous_clients_are_refused_before_the_body_is_read() -> None:
    """The guard answers 401 to a keyless /api request without receiving a byte of its
    body, so 46 MB bodies cost nothing and no 422 discloses the schema."""
    reached: list[str] = []
    received: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = Guard(app, keys=[API_KEY])
    scope = {"type": "http", "path": "/api/events/batch", "method": "POST",
             "headers": [(b"content-length", str(46 * 1024 * 1024).encode())]}
    asyncio.run(guard(scope, receive, send))
    assert (sent[0]["status"], received, reached) == (401, [], [])
    assert json.loads(sent[1]["body"]) == {"error": "a valid API key is required"}


def test_bodies_over_the_route_limit_are_refused(ripen_app: Ripen, smtp: Smtp) -> None:
    """413 for a declared length over the limit and for a chunked body that runs past it;
    the batch routes take up to 2 MiB, the others 64 KiB."""
    web = client(ripen_app)
    big = json.dumps({"events": [{"email": "a@example.com", "type": "visit",
                                  "page": "p" * 400}] * 6000}).encode()
    assert len(big) > 2 * 1024 * 1024
    assert web.post("/api/events/batch", content=big, headers=KEY).status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    chunked = web.post("/subscribe", content=chunks(),
                       headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert web.get("/health").status_code == 200


def test_deeply_nested_json_is_refused_not_a_500(ripen_app: Ripen, smtp: Smtp) -> None:
    """1,000 levels of nesting (under 64 KB): 422 on the public form, 4xx on the API."""
    deep = ("[" * 1000 + "]" * 1000).encode()
    web = client(ripen_app)
    public = web.post("/subscribe", content=b'{"email": ' + deep + b"}",
                      headers={"content-type": "application/json"})
    assert (public.status_code, public.json()) == (
        422, {"error": "the body's JSON is nested too deeply"})
    api = web.post("/api/events/batch", content=b'{"events": ' + deep + b"}",
                   headers={**KEY, "content-type": "application/json"})
    assert 400 <= api.status_code < 500


def test_api_pushes_have_limits_of_their_own(ripen_app: Ripen, smtp: Smtp) -> None:
    """40 pushes from one CRM address with a key are all accepted; the public form from the
    same address is still limited to 30 an hour."""
    web = client(ripen_app)
    pushed = Counter(web.post("/api/leads", json=form(f"crm{n}@example.com"),
                              headers=KEY).status_code for n in range(40))
    assert pushed == {202: 40}
    public = Counter(web.post("/subscribe", json=form(f"web{n}@example.com")).status_code
                     for n in range(31))
    assert public == {202: 30, 429: 1}


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                    "1900-01-01T00:00:00Z"])
def test_times_out_of_range_are_refused_not_a_500(ripen_app: Ripen, smtp: Smtp,
                                                  moment: str) -> None:
    """Events and bounces from another system with an impossible time: 422 naming it."""
    web = client(ripen_app)
    event = web.post("/api/events", headers=KEY, json={
        "email": "a@example.com", "type": "visit", "occurred_at": moment})
    bounce = web.post("/api/bounces", headers=KEY, json={"bounces": [{
        "id": "b1", "type": "hard", "email": "a@example.com", "occurred_at": moment}]})
    assert (event.status_code, bounce.status_code) == (422, 422)
    assert "between 1970 and 2100" in event.text


def test_a_report_period_out_of_range_is_refused(ripen_app: Ripen, smtp: Smtp) -> None:
    """/reports/funnel?until=0001-01-01: 400 with the reason (it was an OverflowError)."""
    response = client(ripen_app).get("/reports/funnel?until=0001-01-01", headers=KEY)
    assert (response.status_code, response.json()) == (
        400, {"error": "until 0001-01-01 is not a date between 1970 and 9000"})


@pytest.mark.parametrize(("fields", "error"), [
    ({"source": "trade_fair"}, 'source "trade_fair": the public form records website or ad'),
    ({"campaign": '=HYPERLINK("https://evil.example")'},
     "campaign starts with '=' (a spreadsheet formula?)"),
    ({"phone": "=1+1"}, "phone may hold digits, spaces and + ( ) / . - only"),
])
def test_the_public_form_refuses_internal_sources_and_formulas(
        ripen_app: Ripen, smtp: Smtp, fields: dict[str, str], error: str) -> None:
    response = client(ripen_app).post("/subscribe", json=form("f@example.com", **fields))
    assert response.status_code == 422
    assert error in response.json()["error"]


def test_an_import_sends_every_confirmation_mail_at_once(ripen_app: Ripen, smtp: Smtp,
                                                         tmp_path: Path) -> None:
    """600 rows: 600 confirmation mails sent in the import, none left for the scheduler
    (the outbox sent only its first batch of 500 for a list of ids)."""
    sink, _ = smtp
    csv = tmp_path / "list.csv"
    csv.write_text("email\n" + "".join(f"row{n}@example.com\n" for n in range(600)),
                   encoding="utf-8")
    summary = import_csv(csv, ripen_app.consent, source="import", consent_version="2026-11")
    sent = ripen_app.send_mail(summary.confirmation_mails)
    assert (summary.imported, sent["sent"], len(sink.messages)) == (600, 600, 600)
    with ripen_app.uow() as uow:
        assert uow.session.exec(select(MailOutbox).where(
            MailOutbox.status != "sent")).all() == []


def test_webhooks_go_to_the_address_that_was_checked(ripen_app: Ripen) -> None:
    """The sender connects to the address its resolver checked (here crm.invalid, which no
    DNS knows, → 127.0.0.1) and names the host in the Host header: a second DNS answer
    between check and connect cannot change where the payload goes."""
    secret = new_secret()
    with running(secret) as crm:
        endpoint = ripen_app.config.sla.webhooks[0].model_copy(update={
            "url": f"http://crm.invalid:{crm.port}/hooks/ripen", "allow_private": True,
            "timeout_seconds": 2})
        now = ripen_app.clock()
        with ripen_app.uow() as uow:
            uow.add(WebhookDelivery(webhook_id="msg_pinned", endpoint_id=endpoint.id,
                                    event_type="handover.created", payload='{"n": 1}',
                                    created_at=now))
            uow.commit()
        asked: list[str] = []

        def resolver(host: str, port: int) -> list[str]:
            asked.append(host)
            return ["127.0.0.1"]

        with httpx.Client() as http:
            counts = WebhookSender(uow=ripen_app.uow, endpoints={endpoint.id: endpoint},
                                   secrets={endpoint.id: [secret]}, clock=ripen_app.clock,
                                   stamp=ripen_app.wall, client=http,
                                   resolver=resolver).deliver()
        assert counts == {"delivered": 1}
        assert asked == ["crm.invalid"]
        [request] = crm.requests
        assert request.headers["host"] == f"crm.invalid:{crm.port}"
        assert crm.verified() == [{"n": 1}]
