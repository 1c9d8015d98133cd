"""The payload lists: open redirects against tracked links, header injection against every
form field, template injection through what a lead types. Zero may succeed."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import select

from engine.bootstrap import Ripen
from engine.store.tables import MailOutbox, TrackedLink
from engine.tokens import Purpose
from tests.conftest import API_KEY, SmtpSink
from tests.consent_helpers import client, confirm_path, form
from tests.factories import NOW, lead

Smtp = tuple[SmtpSink, int]
STORED = "https://www.example.com/whitepaper.pdf"
REDIRECTS = [
    "?url=https://evil.example", "?next=//evil.example", "?redirect=%2F%2Fevil.example",
    "/https://evil.example", "/%2F%2Fevil.example", "/..%2F..%2Fevil.example",
    "%0d%0aLocation:%20https://evil.example", "?url=javascript:alert(1)",
    "\\\\evil.example", "@evil.example",
]
BREAKS = ["\r\n", "\n", "\r", "%0d%0a\r\n", "\r\n\r\n"]
FIELDS = ["first_name", "last_name", "company", "job_title", "phone", "campaign"]


def test_tracked_links_only_ever_go_to_the_stored_destination(ripen_app: Ripen,
                                                              smtp: Smtp) -> None:
    with ripen_app.uow() as uow:
        person = lead()
        uow.add(person)
        uow.flush()
        token_id = secrets.token_urlsafe(12)
        uow.add(TrackedLink(token_id=token_id, lead_id=person.id, content_id="mm-roi-rechner",
                            kind="content", url=STORED, created_at=NOW))
        uow.commit()
    token = ripen_app.tokens.dumps(Purpose.CLICK, token_id, now=NOW)
    web = client(ripen_app)
    successes: list[tuple[str, int, str]] = []
    for payload in REDIRECTS:
        for path in (f"/c/{token}{payload}", f"/c/{payload.lstrip('/?')}"):
            response = web.get(path, follow_redirects=False)
            location = response.headers.get("location")
            if response.status_code >= 500 or (location is not None and location != STORED):
                successes.append((path, response.status_code, location or ""))
    assert successes == []
    assert web.get(f"/c/{token}", follow_redirects=False).headers["location"] == STORED


def test_no_line_break_in_any_field_reaches_a_header(ripen_app: Ripen, smtp: Smtp) -> None:
    sink, _ = smtp
    web = client(ripen_app)
    key = {"authorization": f"Bearer {API_KEY}"}
    accepted: list[tuple[str, str, int]] = []
    for number, (field, newline) in enumerate((f, b) for f in FIELDS for b in BREAKS):
        value = f"Max{newline}Bcc: everyone@evil.example"
        for path, body, headers in (
                ("/subscribe", form(f"inject{number}@example.com", **{field: value}), {}),
                ("/api/leads", {**form(f"api{number}@example.com"), field: value}, key)):
            response = web.post(path, json=body, headers=headers)
            if response.status_code != 422:
                accepted.append((path, field, response.status_code))
    assert accepted == []
    assert sink.messages == []
    with ripen_app.uow() as uow:
        assert uow.session.exec(select(MailOutbox)).all() == []


def test_what_a_lead_types_is_never_evaluated_in_a_template(ripen_app: Ripen,
                                                            smtp: Smtp) -> None:
    sink, _ = smtp
    payloads: dict[str, Any] = {"first_name": "{{ 7*7 }}", "last_name": "<script>x</script>",
                                "company": "{% for x in range(3) %}loop{% endfor %}"}
    web = client(ripen_app)
    response = web.post("/subscribe", json=form("tpl@example.com",
                                                persona="monika-marketing", **payloads))
    assert response.status_code in (200, 202)
    web.post(confirm_path(sink.parsed()[0]))
    ripen_app.journeys.tick()  # the journey's first mail greets the lead by name
    ripen_app.send_mail()
    mail = sink.parsed()[-1]
    assert "Guten Tag" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # not evaluated … (links carry random tokens, which may contain "49" anywhere else)
    assert "Guten Tag 49" not in html + text
    assert "Guten Tag {{ 7*7 }}" in text  # … but shown as typed
    assert "<script>" not in html
