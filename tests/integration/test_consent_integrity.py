"""An unsubscribe is final, a confirmed profile is nobody else's to rewrite (issue 20, 1 and
3): reproduced through the HTTP app on SQLite and PostgreSQL, mail to aiosmtpd."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from engine.addresses import address_hash
from engine.bootstrap import Ripen
from engine.bounces import Bounce, BounceKind, apply_bounces
from engine.importer import import_csv
from engine.store.tables import Lead
from tests.conftest import API_KEY, SmtpSink
from tests.consent_helpers import client, confirm_path, form, unsubscribe_path

Smtp = tuple[SmtpSink, int]
KEY = {"authorization": f"Bearer {API_KEY}"}
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click",
             "headers": {"content-type": "application/x-www-form-urlencoded"}}


def _lead(app: Ripen, email: str) -> Lead:
    with app.uow() as uow:
        lead = uow.lead_by_email(email)
    assert lead is not None
    return lead


def _ledger(app: Ripen, email: str) -> list[str]:
    with app.uow() as uow:
        return [r.action for r in uow.consent_records(_lead(app, email).id or 0)
                if r.purpose == "email_marketing"]


def _suppression(app: Ripen, email: str) -> str | None:
    with app.uow() as uow:
        found = uow.suppression(address_hash(email))
        return found.reason if found else None


def test_an_old_confirmation_link_never_undoes_an_unsubscribe(
        ripen_app: Ripen, smtp: Smtp, tmp_path: Path) -> None:
    """Confirm, one-click unsubscribe, POST the first DOI link again: 410, still
    unsubscribed and suppressed, nothing recorded; an after-sales import then refuses the
    address and no mail reaches it."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("ingrid@example.com"))
    first_link = confirm_path(sink.parsed()[-1])
    assert web.post(first_link).status_code == 200
    web.post(unsubscribe_path(sink.parsed()[-1]), **ONE_CLICK)  # type: ignore[arg-type]
    ledger = _ledger(ripen_app, "ingrid@example.com")
    assert ledger[-1] == "withdrawn"

    again = web.post(first_link)

    assert again.status_code == 410
    assert "nicht mehr gültig" in again.text
    assert _lead(ripen_app, "ingrid@example.com").status == "unsubscribed"
    assert _suppression(ripen_app, "ingrid@example.com") == "unsubscribed"
    assert _ledger(ripen_app, "ingrid@example.com") == ledger
    csv = tmp_path / "customers.csv"
    csv.write_text("email,company\ningrid@example.com,Testwerk IT GmbH\n", encoding="utf-8")
    mails_before = len(sink.messages)
    summary = import_csv(csv, ripen_app.consent, source="import", consent_version="2026-11",
                         customers="after-sales")
    ripen_app.send_mail()
    ripen_app.journeys.tick()
    ripen_app.send_mail()
    assert (summary.merged, summary.imported) == (0, 0)
    assert [reason for _, reason in summary.refused] == [
        "address is suppressed (unsubscribed, erased, bounced or complained); only the "
        "person can sign up again"]
    assert len(sink.messages) == mails_before


def test_the_doi_link_of_an_unsubscribed_pending_sign_up_is_closed(ripen_app: Ripen,
                                                                  smtp: Smtp) -> None:
    """Unsubscribing through the DOI mail's own List-Unsubscribe closes its request."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("never@example.com"))
    doi = sink.parsed()[-1]
    web.post(unsubscribe_path(doi), **ONE_CLICK)  # type: ignore[arg-type]
    assert web.post(confirm_path(doi)).status_code == 410
    assert _lead(ripen_app, "never@example.com").status == "unsubscribed"
    assert _ledger(ripen_app, "never@example.com") == ["requested", "doi_sent", "withdrawn"]


def test_only_a_new_sign_up_and_its_own_link_re_subscribe(ripen_app: Ripen,
                                                          smtp: Smtp) -> None:
    """After an unsubscribe the person signs up again: the old link stays closed, the new
    link confirms (with a new record of its own) and lifts the suppression."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("back@example.com"))
    old_link = confirm_path(sink.parsed()[-1])
    web.post(old_link)
    web.post(unsubscribe_path(sink.parsed()[-1]), data={"choice": "all"})
    ripen_app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    web.post("/subscribe", data=form("back@example.com"))
    new_link = confirm_path(sink.parsed()[-1])
    assert new_link != old_link
    assert _lead(ripen_app, "back@example.com").status == "pending"
    assert _suppression(ripen_app, "back@example.com") == "unsubscribed"  # until confirmed

    assert web.post(old_link).status_code == 410
    assert _lead(ripen_app, "back@example.com").status == "pending"
    assert web.post(new_link).status_code == 200

    assert _lead(ripen_app, "back@example.com").status == "confirmed"
    assert _suppression(ripen_app, "back@example.com") is None
    with ripen_app.uow() as uow:
        records = [(r.action, r.request_id) for r in uow.consent_records(
            _lead(ripen_app, "back@example.com").id or 0) if r.purpose == "email_marketing"
            and r.action in ("requested", "confirmed")]
    [(_, first), _, (_, second), (_, confirmed)] = records
    assert [a for a, _ in records] == ["requested", "confirmed", "requested", "confirmed"]
    assert first != second == confirmed
    assert "Bereits bestätigt" in web.post(new_link).text  # used up: said, not done again


def test_a_complaint_closes_the_open_request(ripen_app: Ripen, smtp: Smtp) -> None:
    """A spam complaint about the DOI mail: its link confirms nothing afterwards."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("angry@example.com"))
    doi = sink.parsed()[-1]
    apply_bounces(ripen_app.uow, [Bounce(kind=BounceKind.COMPLAINT, email="angry@example.com",
                                         message_id=None, status=None, detail="abuse",
                                         key="arf-1")],
                  rules=ripen_app.config.mail.bounces, clock=ripen_app.clock)
    assert web.post(confirm_path(doi)).status_code == 410
    assert _lead(ripen_app, "angry@example.com").status == "suppressed"
    assert _suppression(ripen_app, "angry@example.com") == "complaint"


def test_a_public_sign_up_does_not_rewrite_a_confirmed_profile(ripen_app: Ripen,
                                                               smtp: Smtp) -> None:
    """Someone else types a confirmed address with another name, title, phone and persona:
    nothing changes; the address gets a mail asking to confirm the details, and only its
    link applies them."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("monika@example.com", first_name="Monika",
                                     job_title="Marketingleiterin", phone="+49 89 1234",
                                     persona="monika-marketing"))
    web.post(confirm_path(sink.parsed()[-1]))
    mails = len(sink.messages)

    answer = web.post("/subscribe", json=form("monika@example.com", first_name="Mallory",
                                              job_title="Einkauf", phone="+49 30 666",
                                              persona="kurt-konstrukteur"))

    assert answer.status_code == 202
    lead = _lead(ripen_app, "monika@example.com")
    assert (lead.first_name, lead.job_title, lead.phone, lead.persona_id) == (
        "Monika", "Marketingleiterin", "+49 89 1234", "monika-marketing")
    assert len(sink.messages) == mails + 1
    ask = sink.parsed()[-1]
    assert ask["Subject"] == "Bitte bestätigen Sie Ihre Angaben"
    assert ask["To"] == "monika@example.com"

    assert "Angaben sind bestätigt" in web.post(confirm_path(ask)).text

    lead = _lead(ripen_app, "monika@example.com")
    assert (lead.first_name, lead.job_title, lead.phone, lead.persona_id, lead.status) == (
        "Mallory", "Einkauf", "+49 30 666", "kurt-konstrukteur", "confirmed")
    assert lead.pending_profile is None


def test_details_waiting_for_confirmation_are_dropped_by_an_unsubscribe(
        ripen_app: Ripen, smtp: Smtp) -> None:
    """The confirmation of new details is closed by a later unsubscribe: nothing applies."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("kurt@example.com", first_name="Kurt"))
    web.post(confirm_path(sink.parsed()[-1]))
    web.post("/subscribe", data=form("kurt@example.com", first_name="Eve"))
    ask = sink.parsed()[-1]
    web.post(unsubscribe_path(ask), **ONE_CLICK)  # type: ignore[arg-type]
    assert web.post(confirm_path(ask)).status_code == 410
    lead = _lead(ripen_app, "kurt@example.com")
    assert (lead.first_name, lead.status, lead.pending_profile) == ("Kurt", "unsubscribed",
                                                                   None)


def test_a_system_with_an_api_key_may_update_a_confirmed_profile(ripen_app: Ripen,
                                                                 smtp: Smtp) -> None:
    """The CRM (API key) is trusted with the profile: a push updates it at once, no mail."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("peter@example.com", job_title="Leiter"))
    web.post(confirm_path(sink.parsed()[-1]))
    mails = len(sink.messages)
    pushed = web.post("/api/leads", json=form("peter@example.com", job_title="Werksleiter"),
                      headers=KEY)
    assert (pushed.status_code, pushed.json()["state"]) == (202, "already_confirmed")
    assert _lead(ripen_app, "peter@example.com").job_title == "Werksleiter"
    assert len(sink.messages) == mails
    with ripen_app.uow() as uow:
        assert len(uow.session.exec(select(Lead)).all()) == 1
