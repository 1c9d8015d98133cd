"""Journeys on a virtual clock, with real parts: database, aiosmtpd, the HTTP app."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage

from sqlmodel import select

from engine.bootstrap import Ripen
from engine.store.tables import Enrollment, MailOutbox, SentContent
from tests.conftest import SmtpSink
from tests.consent_helpers import client, confirm_path, form

Smtp = tuple[SmtpSink, int]
CLICK = re.compile(r"https://ripen\.example(/c/[A-Za-z0-9_.\-]+)")


def tick(app: Ripen) -> None:
    """What one scheduler tick does, without Prefect (the flow test covers the wiring)."""
    app.journeys.tick()
    app.send_mail()


def confirmed_lead(app: Ripen, sink: SmtpSink, email: str, **fields: str) -> None:
    web = client(app)
    web.post("/subscribe", data=form(email, **fields))
    web.post(confirm_path(sink.parsed()[-1]))


def enrollments(app: Ripen) -> list[tuple[str, str, str, str | None]]:
    with app.uow() as uow:
        rows = uow.session.exec(select(Enrollment).order_by(Enrollment.id)).all()
    return [(e.journey_id, e.stage, e.status, e.exit_reason) for e in rows]


def click_first_link(app: Ripen, mail: EmailMessage) -> str:
    """Follow the content link of a mail like a person (an hour after it arrived)."""
    body = mail.get_body(("plain",))
    assert body is not None
    match = CLICK.search(body.get_content())
    assert match, body.get_content()
    app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    response = client(app).get(match.group(1), follow_redirects=False,
                               headers={"user-agent": "Mozilla/5.0 Firefox/140"})
    assert response.status_code == 302
    return response.headers["location"]


def next_mail(app: Ripen, sink: SmtpSink, *, max_days: int = 30) -> EmailMessage:
    """Tick day by day until a new marketing mail arrives."""
    before = len(marketing(sink))
    for _ in range(max_days):
        app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
        tick(app)
        if len(marketing(sink)) > before:
            return marketing(sink)[-1]
    raise AssertionError(f"no mail within {max_days} days")


def marketing(sink: SmtpSink) -> list[EmailMessage]:
    return [m for m in sink.parsed() if "bestätigen" not in str(m["Subject"])]


def test_monika_ripens_from_inf_to_bew_by_clicking(ripen_app: Ripen, smtp: Smtp) -> None:
    """INF content → click → BEF → click → EVA → two engagements → BEW, over weeks."""
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "monika@example.com", persona="monika-marketing",
                   first_name="Monika", job_title="Marketingleitung")
    assert enrollments(ripen_app) == [("monika-marketing", "INF", "active", None)]

    tick(ripen_app)
    [inf] = marketing(sink)
    assert inf["Subject"] == "Leadmanagement in 10 Minuten: vom Kontakt zum Kunden"
    assert inf["List-Unsubscribe"].startswith("<https://ripen.example/u/")
    assert inf["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert inf.get_body(("html",)) is not None
    assert "Guten Tag Monika," in inf.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert click_first_link(ripen_app, inf) == \
        "https://example.com/wissen/leadmanagement-grundlagen"
    assert enrollments(ripen_app)[0][1] == "BEF"

    started = ripen_app.clock()
    tick(ripen_app)  # the cap (one marketing mail a day) defers BEF's first mail
    assert len(marketing(sink)) == 1
    bef = next_mail(ripen_app, sink)
    assert bef["Subject"] == "Leitfaden: Buyer-Personas in fünf Workshops erstellen"
    click_first_link(ripen_app, bef)
    assert enrollments(ripen_app)[0][1] == "EVA"

    eva1 = next_mail(ripen_app, sink)  # the cap (two a week) holds it until day 7
    assert eva1["Subject"] == "Whitepaper: Lead-Scoring, das der Vertrieb akzeptiert"
    assert ripen_app.clock() - started >= timedelta(days=7)
    click_first_link(ripen_app, eva1)
    assert enrollments(ripen_app)[0][1] == "EVA"  # EVA's exit rule wants two engagements
    eva2 = next_mail(ripen_app, sink)  # after the step's 7-day wait
    assert eva2["Subject"].startswith("Fallstudie: 3× mehr Sales Accepted Leads")
    click_first_link(ripen_app, eva2)
    assert enrollments(ripen_app)[0][1] == "BEW"
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("monika@example.com")
    assert lead is not None
    assert lead.funnel_stage == "BEW"
    ids = [m["Message-ID"] for m in sink.parsed()]
    assert len(ids) == len(set(ids))


def test_a_lead_who_never_clicks_ends_in_the_slowest_case(ripen_app: Ripen,
                                                          smtp: Smtp) -> None:
    """Two INF offers, no advance by time alone, then the Praxisbrief after 60 days."""
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "silent@example.com", persona="monika-marketing")
    for _ in range(70):
        tick(ripen_app)
        ripen_app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    tick(ripen_app)
    subjects = [m["Subject"] for m in marketing(sink)]
    assert subjects == [
        "Leadmanagement in 10 Minuten: vom Kontakt zum Kunden",
        "Der Grüne-Bananen-Effekt: warum Vertrieb Ihre Leads ablehnt",
        "Praxisbrief: ein Fall aus der Praxis, einmal im Monat",
    ]
    assert enrollments(ripen_app) == [
        ("monika-marketing", "INF", "exited", "slowest_case"),
        ("praxisbrief", "INF", "active", None),
    ]


def test_the_best_fitting_persona_is_chosen_without_a_form_choice(ripen_app: Ripen,
                                                                   smtp: Smtp) -> None:
    """A production manager's title puts him into Peter Produktionsleiter's journey."""
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "peter@example.com", job_title="Produktionsleiter")
    assert enrollments(ripen_app) == [("peter-produktionsleiter", "INF", "active", None)]


def test_content_is_never_sent_twice_to_a_lead(ripen_app: Ripen, smtp: Smtp) -> None:
    """A step whose content the lead already got is skipped, not resent."""
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "twice@example.com", persona="monika-marketing")
    tick(ripen_app)
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("twice@example.com")
        assert lead is not None
        journey = ripen_app.config.journeys["praxisbrief"]
        uow.add(SentContent(lead_id=lead.id or 0, content_id="newsletter-praxis",
                            journey_id="earlier", step_id="x", sent_at=ripen_app.clock()))
        ripen_app.journeys.enroll(uow, lead, journey, now=ripen_app.clock())
        uow.commit()
    report = ripen_app.journeys.run_step(ripen_app.config.journeys["praxisbrief"], "letter")
    assert report.counts == {"skipped_already_sent": 1}
    with ripen_app.uow() as uow:
        rows = uow.session.exec(select(MailOutbox).where(MailOutbox.kind == "marketing")).all()
    assert [r.subject for r in rows] == ["Leadmanagement in 10 Minuten: vom Kontakt zum Kunden"]


def test_scanner_clicks_do_not_move_a_lead(ripen_app: Ripen, smtp: Smtp) -> None:
    """A link opened by a mail scanner right after delivery is recorded but does not count."""
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "scanned@example.com", persona="monika-marketing")
    tick(ripen_app)
    body = marketing(sink)[0].get_body(("plain",))
    assert body is not None
    match = CLICK.search(body.get_content())
    assert match
    response = client(ripen_app).get(match.group(1), follow_redirects=False,
                                     headers={"user-agent": "Mozilla/5.0 Firefox/140"})
    assert response.status_code == 302  # within seconds of delivery: a machine
    assert enrollments(ripen_app)[0][1] == "INF"
    scanner = client(ripen_app)
    ripen_app.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    scanner.get(match.group(1), follow_redirects=False,
                headers={"user-agent": "Barracuda Sentinel (EE)"})
    assert enrollments(ripen_app)[0][1] == "INF"


def test_click_links_never_redirect_to_a_url_from_the_request(ripen_app: Ripen,
                                                             smtp: Smtp) -> None:
    """Forged or foreign tokens get 404, whatever the query string says (CWE-601)."""
    web = client(ripen_app)
    for path in ("/c/abc", "/c/abc?url=https://evil.example", "/c/" + "A" * 600):
        response = web.get(path, follow_redirects=False)
        assert response.status_code == 404
        assert "location" not in response.headers
