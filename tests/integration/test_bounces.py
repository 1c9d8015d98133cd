"""Asynchronous bounces and complaints: DSN and ARF mails in a Maildir, and the JSON API."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from engine.addresses import address_hash
from engine.bootstrap import Ripen
from engine.bounces import BounceKind, NotAReport, ingest, parse_report
from engine.store.tables import ConsentRecord, Enrollment, Event, Lead, Suppression
from tests.conftest import API_KEY
from tests.consent_helpers import client
from tests.integration.test_journeys import Smtp, confirmed_lead, marketing, tick
from tests.reports import AUTO_REPLY, arf_complaint, postfix_dsn


def _first_mail(app: Ripen, smtp: Smtp, email: str) -> EmailMessage:
    sink, _ = smtp
    confirmed_lead(app, sink, email, persona="monika-marketing")
    tick(app)
    return [m for m in marketing(sink) if m["To"] == email][-1]


def _maildir(root: Path, mails: dict[str, bytes]) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, raw in mails.items():
        (root / "new" / name).write_bytes(raw)
    return root


def _state(app: Ripen, email: str) -> tuple[str, str | None, list[str | None]]:
    with app.uow() as uow:
        lead = uow.lead_by_email(email)
        assert lead is not None
        suppression = uow.session.exec(select(Suppression).where(
            Suppression.email_hash == address_hash(email))).first()
        exits = [e.exit_reason for e in uow.session.exec(
            select(Enrollment).where(Enrollment.lead_id == lead.id)).all()]
    return lead.status, suppression.reason if suppression else None, exits


def test_postfix_hard_bounce_in_a_maildir_suppresses_once(ripen_app: Ripen, smtp: Smtp,
                                                          tmp_path: Path) -> None:
    """5.1.1 for our Message-ID: suppressed at once, journey left; re-reading changes nothing."""
    mail = _first_mail(ripen_app, smtp, "gone@example.com")
    box = _maildir(tmp_path / "bounces", {
        "1.dsn": postfix_dsn("gone@example.com", str(mail["Message-ID"])),
        "2.auto": AUTO_REPLY})

    first = ingest(box, ripen_app.uow, rules=ripen_app.config.mail.bounces,
                   clock=ripen_app.clock)
    assert (first.counts["hard"], first.counts["suppressed"]) == (1, 1)
    assert first.skipped == [("2.auto", "not a multipart/report but text/plain")]
    assert _state(ripen_app, "gone@example.com") == ("suppressed", "hard_bounce",
                                                      ["hard_bounce"])
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["1.dsn:2,S", "2.auto:2,S"]
    assert list((box / "new").iterdir()) == []

    again = ingest(box, ripen_app.uow, rules=ripen_app.config.mail.bounces,
                   clock=ripen_app.clock)
    assert (again.counts["hard"], again.counts["duplicate"]) == (0, 1)
    with ripen_app.uow() as uow:
        events = uow.session.exec(select(Event).where(Event.type == "bounce_hard")).all()
    assert [(e.data["status"], e.data["message_id"]) for e in events] == [
        ("5.1.1", str(mail["Message-ID"]))]


def test_arf_complaint_found_by_message_id_withdraws_consent(ripen_app: Ripen, smtp: Smtp,
                                                             tmp_path: Path) -> None:
    """A redacted complaint still finds the lead through the attached Message-ID."""
    mail = _first_mail(ripen_app, smtp, "angry@example.com")
    report = tmp_path / "complaint.eml"
    report.write_bytes(arf_complaint(str(mail["Message-ID"])))
    summary = ingest(report, ripen_app.uow, rules=ripen_app.config.mail.bounces,
                     clock=ripen_app.clock)
    assert (summary.counts["complaint"], summary.counts["suppressed"]) == (1, 1)
    assert _state(ripen_app, "angry@example.com") == ("suppressed", "complaint", ["complaint"])
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("angry@example.com")
        assert lead is not None
        ledger = [(r.action, r.method) for r in uow.consent_records(lead.id or 0)]
    assert ledger[-1] == ("withdrawn", "complaint")

    # No more marketing mail to the address, even after further ticks.
    sink, _ = smtp
    before = len(marketing(sink))
    for _ in range(10):
        ripen_app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
        tick(ripen_app)
    assert [m for m in marketing(sink)[before:] if m["To"] == "angry@example.com"] == []


def test_soft_bounces_suppress_only_after_the_limit(ripen_app: Ripen, smtp: Smtp,
                                                   tmp_path: Path) -> None:
    """Mailbox full twice: still mailed; the third time (limit 3 in 30 days): suppressed."""
    mail = _first_mail(ripen_app, smtp, "full@example.com")
    rules = ripen_app.config.mail.bounces
    assert rules.soft_limit == 3
    for number in range(1, 4):
        report = tmp_path / f"soft-{number}.eml"
        report.write_bytes(postfix_dsn("full@example.com", str(mail["Message-ID"]),
                                       status="4.2.2", action="delayed"))
        ingest(report, ripen_app.uow, rules=rules, clock=ripen_app.clock)
        expected = ("suppressed", "soft_bounces") if number == 3 else ("confirmed", None)
        assert _state(ripen_app, "full@example.com")[:2] == expected, number


@pytest.mark.parametrize(("raw", "reason"), [
    (AUTO_REPLY, "not a multipart/report but text/plain"),
    (arf_complaint("<a@b>", feedback_type="not-spam"),
     "feedback type 'not-spam' is not a complaint"),
    (postfix_dsn("x@example.com", "<a@b>", status="2.0.0", action="delivered"),
     "delivery report without a failed or delayed recipient"),
], ids=["auto-reply", "not-spam", "delivered"])
def test_report_parsing_refuses_what_is_not_a_report(raw: bytes, reason: str) -> None:
    """Auto-replies, 'not spam' feedback and success notices are not bounces."""
    with pytest.raises(NotAReport) as caught:
        parse_report(raw)
    assert str(caught.value) == reason


def test_a_full_mailbox_is_a_soft_bounce_even_when_permanent() -> None:
    [full] = parse_report(postfix_dsn("X@Example.com", "<a@b>", status="5.2.2"))
    assert (full.kind, full.email, full.status) == (BounceKind.SOFT, "x@example.com", "5.2.2")


def test_bounce_api_records_once_and_refuses_bad_input(ripen_app: Ripen, smtp: Smtp) -> None:
    """JSON from an ESP: hard bounce by address, duplicate id, bad address, no key."""
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "esp@example.com", persona="monika-marketing")
    web = client(ripen_app)
    headers = {"authorization": f"Bearer {API_KEY}"}
    body = {"bounces": [{"id": "esp-1", "type": "hard", "email": "ESP@example.com",
                         "status": "5.1.1", "detail": "user unknown"}]}
    assert web.post("/api/bounces", json=body).status_code == 401
    first = web.post("/api/bounces", json=body, headers=headers)
    assert first.json() == {"recorded": 1, "suppressed": 1, "duplicates": 0, "unknown": 0}
    second = web.post("/api/bounces", json=body, headers=headers)
    assert second.json() == {"recorded": 0, "suppressed": 0, "duplicates": 1, "unknown": 0}
    assert _state(ripen_app, "esp@example.com")[:2] == ("suppressed", "hard_bounce")

    bad = web.post("/api/bounces", headers=headers, json={"bounces": [
        {"id": "esp-2", "type": "hard", "email": "not-an-address"}]})
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("bounces[0].email: ")
    neither = web.post("/api/bounces", headers=headers, json={"bounces": [
        {"id": "esp-3", "type": "soft"}]})
    assert (neither.status_code, neither.json()) == (
        422, {"error": "bounces[0]: give email or message_id"})
    wrong_type = web.post("/api/bounces", headers=headers, json={"bounces": [
        {"id": "esp-4", "type": "bogus", "email": "x@example.com"}]})
    assert wrong_type.status_code == 422
    with ripen_app.uow() as uow:
        kinds = [e.type for e in uow.session.exec(select(Event).where(
            Event.source == "bounce")).all()]
        leads = uow.session.exec(select(Lead)).all()
        withdrawn = uow.session.exec(select(ConsentRecord).where(
            ConsentRecord.action == "withdrawn")).all()
    assert kinds == ["bounce_hard"]
    assert len(leads) == 1
    assert withdrawn == []  # a bounce is not a withdrawal; only a complaint is
