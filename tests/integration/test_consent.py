"""Capture and double opt-in with real parts: SQLite/PostgreSQL, aiosmtpd, the HTTP app."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from engine.addresses import address_hash
from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.consent import Answer, LeadState, SignUp
from engine.settings import load_settings
from engine.store.tables import (
    ConsentRecord,
    Event,
    Lead,
    MailOutbox,
    SignupAttempt,
    Suppression,
)
from engine.tokens import Purpose, TokenExpired, TokenInvalid
from tests.conftest import API_KEY, SmtpSink
from tests.consent_helpers import (
    client,
    confirm_path,
    form,
    text_everywhere,
    unsubscribe_path,
)
from tests.factories import NOW, example_tree

Smtp = tuple[SmtpSink, int]


def _lead(app, email):  # type: ignore[no-untyped-def]
    with app.uow() as uow:
        return uow.lead_by_email(email)


def _pending(web, sink: SmtpSink, email: str) -> str:  # type: ignore[no-untyped-def]
    """Sign up through the form; the path of the confirmation link in the mail."""
    web.post("/subscribe", data=form(email))
    return confirm_path(sink.parsed()[-1])


def _records(app, email):  # type: ignore[no-untyped-def]
    lead = _lead(app, email)
    with app.uow() as uow:
        return [(r.action, r.purpose) for r in uow.consent_records(lead.id)]


def test_sign_up_sends_the_confirmation_at_once_and_post_confirms(ripen_app, smtp: Smtp) -> None:
    """The DOI mail reaches the SMTP server during the request; the button's POST confirms."""
    sink, _ = smtp
    web = client(ripen_app)
    response = web.post("/subscribe", data=form("Max.Muster@Beispiel.DE", first_name="Max",
                                                 purposes=["email_marketing", "tracking"]),
                        headers={"user-agent": "Firefox/140"})
    assert response.status_code == 200
    [mail] = sink.parsed()
    assert mail["To"] == "max.muster@beispiel.de"
    assert mail["Subject"] == "Bitte bestätigen Sie Ihre Anmeldung"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"].endswith("@mail.example.com>")
    assert mail.get_body(("html",)) is not None
    path = confirm_path(mail)
    assert web.get(path).status_code == 200
    assert _lead(ripen_app, "max.muster@beispiel.de").status == "pending"
    confirmed = web.post(path, headers={"user-agent": "Firefox/140"})
    assert confirmed.status_code == 200
    assert "Vielen Dank" in confirmed.text
    lead = _lead(ripen_app, "max.muster@beispiel.de")
    assert (lead.status, lead.tracking_consent, lead.phone_consent) == ("confirmed", True, False)
    assert _records(ripen_app, "max.muster@beispiel.de") == [
        ("requested", "email_marketing"), ("requested", "tracking"),
        ("doi_sent", "email_marketing"), ("confirmed", "email_marketing"),
        ("confirmed", "tracking")]


def test_the_proof_is_complete(ripen_app, smtp: Smtp) -> None:
    """Text as shown with its hash and version, form, source, IP/UA, DOI Message-ID, confirm."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("proof@example.com", campaign="messe-2026"),
             headers={"user-agent": "Browser/1"})
    [mail] = sink.parsed()
    web.post(confirm_path(mail), headers={"user-agent": "Browser/2"})
    proof = ripen_app.consent.proof("proof@example.com")
    requested, sent, confirmed = proof.entries
    shown = ripen_app.config.consent.text("2026-11").purposes["email_marketing"]
    assert requested.detail["text version"] == "2026-11"
    assert proof.texts[requested.detail["text SHA-256"]] == shown
    assert (requested.detail["form"], requested.detail["source"],
            requested.detail["campaign"]) == ("web-form", "website", "messe-2026")
    assert requested.detail["IP"] == "testclient" or requested.detail["IP"]
    assert requested.detail["user agent"] == "Browser/1"
    assert sent.detail["DOI Message-ID"] == mail["Message-ID"]
    assert confirmed.detail["user agent"] == "Browser/2"
    assert confirmed.detail["method"] == "doi-button"


@pytest.mark.parametrize("agent", ["Microsoft Office/16.0", "Barracuda", "Proofpoint"])
def test_scanners_never_confirm(ripen_app, smtp: Smtp, agent: str) -> None:
    """3× GET and 1× HEAD by a mail scanner confirm nothing; the human's POST then does."""
    sink, _ = smtp
    web = client(ripen_app)
    path = _pending(web, sink, "scan@example.com")
    for _ in range(3):
        assert web.get(path, headers={"user-agent": agent}).status_code == 200
    assert web.head(path, headers={"user-agent": agent}).status_code in (200, 405)
    assert _lead(ripen_app, "scan@example.com").status == "pending"
    assert ("confirmed", "email_marketing") not in _records(ripen_app, "scan@example.com")
    web.post(path)
    assert _lead(ripen_app, "scan@example.com").status == "confirmed"


def test_a_repeated_confirmation_changes_nothing(ripen_app, smtp: Smtp) -> None:
    """The second POST says "already confirmed" and adds no second record."""
    sink, _ = smtp
    web = client(ripen_app)
    path = _pending(web, sink, "twice@example.com")
    web.post(path)
    again = web.post(path)
    assert again.status_code == 200
    assert "Bereits bestätigt" in again.text
    assert _records(ripen_app, "twice@example.com").count(("confirmed", "email_marketing")) == 1


def _tampered(token: str) -> list[str]:
    variants = [token[:-1], token[:-5], token[1:], token + "A", token.replace(".", "", 1), ""]
    for index in range(0, len(token), 3):
        flipped = "B" if token[index] != "B" else "C"
        variants.append(token[:index] + flipped + token[index + 1:])
    return [v for v in variants if v != token]


def test_tampered_tokens_are_all_refused(ripen_app, smtp: Smtp) -> None:
    """Bit flips, truncation, another purpose and expiry: zero accepted."""
    sink, _ = smtp
    web = client(ripen_app)
    token = _pending(web, sink, "tamper@example.com").removeprefix("/confirm/")
    accepted = 0
    for bad in _tampered(token):
        try:
            ripen_app.consent.confirm(bad, ip=None, user_agent=None)
            accepted += 1
        except TokenInvalid:
            pass
        assert web.post(f"/confirm/{bad}").status_code in (404, 405, 307)
    lead = _lead(ripen_app, "tamper@example.com")
    other = ripen_app.tokens.dumps(Purpose.UNSUBSCRIBE, lead.doi_nonce, now=ripen_app.clock())
    with pytest.raises(TokenInvalid):
        ripen_app.consent.confirm(other, ip=None, user_agent=None)
    ripen_app.clock.advance(timedelta(days=7, seconds=1))
    with pytest.raises(TokenExpired):
        ripen_app.consent.confirm(token, ip=None, user_agent=None)
    assert accepted == 0
    assert _lead(ripen_app, "tamper@example.com").status == "pending"


def test_an_expired_link_offers_a_new_one(ripen_app, smtp: Smtp) -> None:
    """After 7 days the page answers 410 with a button; the new link confirms."""
    sink, _ = smtp
    web = client(ripen_app)
    old = _pending(web, sink, "late@example.com")
    ripen_app.clock.advance(timedelta(days=8))
    page = web.get(old)
    assert page.status_code == 410
    assert f'action="{old}/renew"' in page.text
    assert web.post(old).status_code == 410
    assert web.post(f"{old}/renew").status_code == 200
    new = confirm_path(sink.parsed()[-1])
    assert new != old
    assert web.post(new).status_code == 200
    assert _lead(ripen_app, "late@example.com").status == "confirmed"


def test_bombing_one_address_from_100_ips_sends_at_most_three_mails(ripen_app,
                                                                   smtp: Smtp) -> None:
    """1,000 sign-ups for one victim from 100 addresses: at most 3 confirmation mails."""
    sink, _ = smtp
    answers = []
    for n in range(1000):
        result = ripen_app.consent.sign_up(SignUp(
            email="victim@example.com", source="website", consent_version="2026-11",
            ip=f"198.51.100.{n % 100}"))
        answers.append(result.answer)
        if result.send_now:
            ripen_app.send_mail(result.send_now)
        ripen_app.clock.advance(timedelta(seconds=1))
    assert len(sink.messages) <= 3
    assert answers.count(Answer.ACCEPTED) == 3
    assert answers.count(Answer.RATE_LIMITED) == 997


def test_over_the_limit_is_429_with_retry_after(ripen_app, smtp: Smtp) -> None:
    """The fourth sign-up of an address within 24 h is refused with Retry-After."""
    web = client(ripen_app)
    for _ in range(3):
        assert web.post("/subscribe", data=form("often@example.com")).status_code == 200
    refused = web.post("/subscribe", json=form("often@example.com"))
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 24 * 3600


def test_a_spoofed_forwarded_for_is_ignored(ripen_app, smtp: Smtp) -> None:
    """X-Forwarded-For from an untrusted peer does not change the recorded IP."""
    client(ripen_app).post("/subscribe", data=form("spoof@example.com"),
                           headers={"x-forwarded-for": "203.0.113.9"})
    lead = _lead(ripen_app, "spoof@example.com")
    with ripen_app.uow() as uow:
        [requested] = [r for r in uow.consent_records(lead.id) if r.action == "requested"]
    assert requested.ip != "203.0.113.9"


def _state(app, web, email: str, state: str, sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    if state == "new":
        return
    web.post("/subscribe", data=form(email))
    if state in ("confirmed", "suppressed"):
        web.post(confirm_path(sink.parsed()[-1]))
    if state == "suppressed":
        with app.uow() as uow:
            uow.suppress(address_hash(email), "complaint", app.clock())
            uow.commit()
    app.clock.advance(timedelta(days=2))  # out of the per-address window


@pytest.mark.parametrize("as_json", [False, True])
def test_the_four_address_states_get_identical_answers(ripen_app, smtp: Smtp,
                                                        as_json: bool) -> None:
    """New, pending, confirmed and suppressed: byte-identical status, type and body."""
    sink, _ = smtp
    web = client(ripen_app)
    answers = []
    for state in ("new", "pending", "confirmed", "suppressed"):
        email = f"{state}@example.com"
        _state(ripen_app, web, email, state, sink)
        data = form(email)
        response = web.post("/subscribe", json=data) if as_json else \
            web.post("/subscribe", data=data)
        answers.append((response.status_code, response.headers["content-type"],
                        response.content))
    assert len(set(answers)) == 1, answers
    assert _lead(ripen_app, "confirmed@example.com").status == "confirmed"


def test_bad_addresses_are_refused_with_a_reason(ripen_app, smtp: Smtp) -> None:
    """The reason is shown; no lead is stored, only the attempt as a hash of what was typed
    (it counts for the rate limits and as a refused address in the report)."""
    web = client(ripen_app)
    response = web.post("/subscribe", json=form("max@@example.com"))
    assert response.status_code == 422
    assert "@" in response.json()["error"]
    page = web.post("/subscribe", data=form("no-at-sign"))
    assert page.status_code == 422
    assert "Eine E-Mail-Adresse braucht ein @-Zeichen" in page.text  # the form is German
    with ripen_app.uow() as uow:
        assert uow.session.exec(select(Lead)).all() == []
        attempts = uow.session.exec(select(SignupAttempt)).all()
    assert sorted((a.email_hash, bool(a.refused)) for a in attempts) == sorted(
        [(address_hash("max@@example.com"), True), (address_hash("no-at-sign"), True)])


def test_header_injection_in_a_name_is_refused(ripen_app, smtp: Smtp) -> None:
    """CR/LF in any field that may reach a header: 422, no lead, no mail."""
    sink, _ = smtp
    response = client(ripen_app).post("/subscribe", json=form(
        "inject@example.com", first_name="Max\r\nBcc: everyone@example.com"))
    assert response.status_code == 422
    assert sink.messages == []


def test_consent_to_email_is_required(ripen_app, smtp: Smtp) -> None:
    """No ticked box, no sign-up and no mail (HubSpot sends one anyway; we do not)."""
    sink, _ = smtp
    response = client(ripen_app).post("/subscribe", data={"email": "nobox@example.com",
                                                          "consent_version": "2026-11"})
    assert response.status_code == 422
    assert "Bitte willigen Sie ein, dass wir Ihnen E-Mails senden dürfen." in response.text
    assert sink.messages == []


def test_a_repeat_sign_up_merges_into_one_lead(ripen_app, smtp: Smtp) -> None:
    """Same normalised address twice: one lead, the newer details kept."""
    web = client(ripen_app)
    web.post("/subscribe", data=form("Same@Example.com", first_name="Eva"))
    web.post("/subscribe", data=form("same@example.com", job_title="CMO"))
    with ripen_app.uow() as uow:
        leads = uow.session.exec(select(Lead)).all()
        merged = uow.session.exec(select(Event).where(Event.type == "signup_merged")).all()
    assert [(lead.email, lead.first_name, lead.job_title) for lead in leads] == [
        ("same@example.com", "Eva", "CMO")]
    assert [event.lead_id for event in merged] == [leads[0].id]  # counted for data quality


def _confirmed(app, web, sink: SmtpSink, email: str):  # type: ignore[no-untyped-def]
    web.post("/subscribe", data=form(email))
    mail = sink.parsed()[-1]
    web.post(confirm_path(mail))
    return mail


def test_one_click_unsubscribe_takes_effect_at_once(ripen_app, smtp: Smtp) -> None:
    """RFC 8058: POST without cookies, 200 without redirect, suppressed before it answers."""
    sink, _ = smtp
    web = client(ripen_app)
    mail = _confirmed(ripen_app, web, sink, "leave@example.com")
    web.cookies.clear()
    response = web.post(unsubscribe_path(mail), content=b"List-Unsubscribe=One-Click",
                        headers={"content-type": "application/x-www-form-urlencoded"},
                        follow_redirects=False)
    assert response.status_code == 200
    lead = _lead(ripen_app, "leave@example.com")
    assert lead.status == "unsubscribed"
    with ripen_app.uow() as uow:
        assert uow.suppression(address_hash("leave@example.com")).reason == "unsubscribed"
    assert ("withdrawn", "email_marketing") in _records(ripen_app, "leave@example.com")


def test_the_unsubscribe_page_offers_a_pause(ripen_app, smtp: Smtp) -> None:
    """GET shows both choices and changes nothing; "pause" keeps the opt-in, pauses 90 days."""
    sink, _ = smtp
    web = client(ripen_app)
    path = unsubscribe_path(_confirmed(ripen_app, web, sink, "pause@example.com"))
    page = web.get(path)
    assert 'value="pause"' in page.text
    assert 'value="all"' in page.text
    assert _lead(ripen_app, "pause@example.com").status == "confirmed"
    web.post(path, data={"choice": "pause"})
    lead = _lead(ripen_app, "pause@example.com")
    assert lead.status == "confirmed"
    assert lead.mail_paused_until == ripen_app.clock() + timedelta(days=90)


def test_unsubscribe_between_render_and_send_stops_the_mail(ripen_app, smtp: Smtp) -> None:
    """A marketing mail rendered before the unsubscribe is not sent after it."""
    sink, _ = smtp
    web = client(ripen_app)
    mail = _confirmed(ripen_app, web, sink, "render@example.com")
    lead = _lead(ripen_app, "render@example.com")
    with ripen_app.uow() as uow:
        row = MailOutbox(idempotency_key="nurture:test:1", lead_id=lead.id, kind="marketing",
                         to_address=lead.email, subject="Whitepaper", message_id="<m1@x>",
                         created_at=ripen_app.clock())
        uow.add_mail(row, body_html="<p>x</p>", body_text="x")
        uow.commit()
    web.post(unsubscribe_path(mail), data={"List-Unsubscribe": "One-Click"})
    sent_before = len(sink.messages)
    ripen_app.send_mail()
    assert len(sink.messages) == sent_before
    with ripen_app.uow() as uow:
        assert uow.outbox_row(row.id).status == "suppressed"


def test_a_marketing_mail_is_checked_again_right_before_submission(ripen_app,
                                                                   smtp: Smtp) -> None:
    """Suppressed after the row was claimed-ready (e.g. by a bounce elsewhere): not sent."""
    sink, _ = smtp
    web = client(ripen_app)
    _confirmed(ripen_app, web, sink, "late-suppress@example.com")
    lead = _lead(ripen_app, "late-suppress@example.com")
    with ripen_app.uow() as uow:
        uow.add_mail(MailOutbox(idempotency_key="nurture:test:2", lead_id=lead.id,
                                kind="marketing", to_address=lead.email, subject="x",
                                message_id="<m2@x>", created_at=ripen_app.clock()),
                     body_html="x", body_text="x")
        uow.suppress(address_hash(lead.email), "complaint", ripen_app.clock())
        uow.commit()
    before = len(sink.messages)
    assert ripen_app.send_mail()["suppressed"] == 1
    assert len(sink.messages) == before


def test_suppressed_addresses_stay_suppressed_on_import(ripen_app, smtp: Smtp) -> None:
    """An unsubscribed address pushed by API is refused; only the person can sign up again."""
    sink, _ = smtp
    web = client(ripen_app)
    mail = _confirmed(ripen_app, web, sink, "gone@example.com")
    web.post(unsubscribe_path(mail), data={"choice": "all"})
    ripen_app.clock.advance(timedelta(days=2))
    before = len(sink.messages)
    pushed = web.post("/api/leads", json=form("gone@example.com"),
                      headers={"authorization": f"Bearer {API_KEY}"})
    assert pushed.status_code == 409  # the system with a key is told why
    assert pushed.json()["state"] == LeadState.SUPPRESSED
    assert len(sink.messages) == before
    assert _lead(ripen_app, "gone@example.com").status == "unsubscribed"
    web.post("/subscribe", data=form("gone@example.com"))  # the person asks again
    assert len(sink.messages) == before + 1
    web.post(confirm_path(sink.parsed()[-1]))
    assert _lead(ripen_app, "gone@example.com").status == "confirmed"
    with ripen_app.uow() as uow:
        assert uow.suppression(address_hash("gone@example.com")) is None


def test_the_lead_api_needs_a_key(ripen_app, smtp: Smtp) -> None:
    """POST /api/leads without or with a wrong key: 401, nothing stored."""
    web = client(ripen_app)
    assert web.post("/api/leads", json=form("k@example.com")).status_code == 401
    assert web.post("/api/leads", json=form("k@example.com"),
                    headers={"authorization": "Bearer wrong"}).status_code == 401
    assert _lead(ripen_app, "k@example.com") is None


def test_one_reminder_at_most_then_purge(ripen_app, smtp: Smtp) -> None:
    """Day 3: one reminder; later runs send none; after 14 days the sign-up is gone."""
    sink, _ = smtp
    client(ripen_app).post("/subscribe", data=form("slow@example.com"))
    ripen_app.clock.advance(timedelta(days=3, minutes=1))
    assert len(ripen_app.consent.send_reminders()) == 1
    assert ripen_app.consent.send_reminders() == []
    ripen_app.send_mail()
    assert [m["Subject"] for m in sink.parsed()] == [
        "Bitte bestätigen Sie Ihre Anmeldung", "Erinnerung: Bitte bestätigen Sie Ihre Anmeldung"]
    assert confirm_path(sink.parsed()[0]) == confirm_path(sink.parsed()[1])
    ripen_app.clock.advance(timedelta(days=11))
    assert ripen_app.consent.purge_unconfirmed() == 1
    assert _lead(ripen_app, "slow@example.com") is None
    with ripen_app.uow() as uow:
        assert uow.session.exec(select(ConsentRecord)).all() == []


def test_gdpr_export_has_profile_and_consents(ripen_app, smtp: Smtp) -> None:
    """The export names everything held: profile, consents, mails."""
    sink, _ = smtp
    web = client(ripen_app)
    _confirmed(ripen_app, web, sink, "export@example.com")
    response = web.get("/api/gdpr/export", params={"email": "export@example.com"},
                       headers={"authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200
    data = response.json()
    assert data["profile"]["email"] == "export@example.com"
    assert [c["action"] for c in data["consents"]] == ["requested", "doi_sent", "confirmed"]
    assert len(data["mails"]) == 1


def test_after_erasure_the_address_is_nowhere_but_the_suppression_hash(ripen_app,
                                                                       smtp: Smtp) -> None:
    """A scan of every text column of every table finds neither address nor name."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("erase.me@example.com", first_name="Erika",
                                     last_name="Mustermann", company="Muster AG"),
             headers={"user-agent": "UA-of-Erika"})
    web.post(confirm_path(sink.parsed()[-1]))
    response = web.post("/api/gdpr/erase", json={"email": "erase.me@example.com"},
                        headers={"authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200
    leftovers = [(t, c) for t, c, value in text_everywhere(ripen_app.db)
                 if any(s in value for s in ("erase.me", "Erika", "Mustermann", "UA-of-Erika"))]
    assert leftovers == []
    with ripen_app.uow() as uow:
        [entry] = uow.session.exec(select(Suppression)).all()
    assert (entry.email_hash, entry.reason) == (address_hash("erase.me@example.com"), "erased")
    again = web.post("/api/leads", json=form("erase.me@example.com"),
                     headers={"authorization": f"Bearer {API_KEY}"})
    assert again.json()["state"] == LeadState.SUPPRESSED


def test_a_reminder_the_template_fails_for_stops_no_other_reminder(
        migrated: Engine, smtp: Smtp, tmp_path: Path) -> None:
    """A confirmation template that fails on one lead's values (a method on an empty first
    name, in reminders only) skips that lead's reminder; the others go out, and the lead is
    not tried again at every maintenance run."""
    root = tmp_path / "ripen"
    example_tree(root)
    doi = root / "templates" / "email" / "transactional" / "doi_confirm.txt.j2"
    text = doi.read_text(encoding="utf-8")
    assert "Guten Tag," in text
    doi.write_text(text.replace("Guten Tag,", "Guten Tag{% if subject.startswith('Erinnerung')"
                                              " %} {{ lead.first_name.upper() }}{% endif %},"),
                   encoding="utf-8")
    sink, port = smtp
    app = Ripen(settings=load_settings(mail_url=f"smtp://127.0.0.1:{port}?starttls=no",
                                       public_base_url="https://ripen.example",
                                       secret_keys=["k" * 40]),
                config=load_and_compile(ConfigPaths.under(root)), db=migrated,
                clock=ManualClock(NOW))
    web = client(app)
    web.post("/subscribe", data=form("named@example.com", first_name="Anna"))
    web.post("/subscribe", data=form("nameless@example.com"))
    app.clock.advance(timedelta(days=3, minutes=1))  # type: ignore[attr-defined]
    assert len(app.consent.send_reminders()) == 1
    assert app.consent.send_reminders() == []
    app.send_mail()
    reminders = [m for m in sink.parsed() if m["Subject"].startswith("Erinnerung")]
    assert [(m["To"], "ANNA" in m.get_body(("plain",)).get_content()) for m in reminders] == [
        ("named@example.com", True)]
