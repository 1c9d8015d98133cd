"""Open pixels (only with tracking consent, weighted low) and the stage a first action implies."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select

from engine.bootstrap import Ripen
from engine.store.tables import Event
from tests.consent_helpers import client, confirm_path, form
from tests.integration.test_journeys import Smtp, confirmed_lead, enrollments, marketing, tick

PIXEL = re.compile(r'<img src="https://ripen\.example(/o/[A-Za-z0-9_.\-]+\.gif)"')


def _html(message: object) -> str:
    body = message.get_body(("html",))  # type: ignore[attr-defined]
    assert body is not None
    return str(body.get_content())


def _opens(app: Ripen) -> list[tuple[str | None, bool]]:
    with app.uow() as uow:
        return [(e.content_id, e.is_scanner) for e in uow.session.exec(
            select(Event).where(Event.type == "open")).all()]


def test_open_pixel_only_with_tracking_consent_and_counted_once(ripen_app: Ripen,
                                                                smtp: Smtp) -> None:
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "tracked@example.com", persona="monika-marketing",
                   purposes=["email_marketing", "tracking"])
    confirmed_lead(ripen_app, sink, "private@example.com", persona="monika-marketing")
    tick(ripen_app)
    mails = {str(m["To"]): m for m in marketing(sink)}
    assert PIXEL.search(_html(mails["private@example.com"])) is None
    match = PIXEL.search(_html(mails["tracked@example.com"]))
    assert match, _html(mails["tracked@example.com"])

    web = client(ripen_app)
    ripen_app.clock.advance(timedelta(minutes=30))  # type: ignore[attr-defined]
    for _ in range(3):  # a reader opens the mail three times
        response = web.get(match.group(1), headers={"user-agent": "GoogleImageProxy"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/gif"
        assert response.content.startswith(b"GIF89a")
    assert _opens(ripen_app) == [("mm-leadmanagement-grundlagen", False)]
    # An open weighs little and moves nobody to another stage.
    assert enrollments(ripen_app) == [("monika-marketing", "INF", "active", None)] * 2
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("tracked@example.com")
        assert lead is not None
        assert 0 < ripen_app.journeys.engagement(uow, lead) <= 2

    forged = web.get("/o/not-a-token.gif")
    assert (forged.status_code, forged.content[:6]) == (200, b"GIF89a")
    assert len(_opens(ripen_app)) == 1


def test_open_after_tracking_consent_is_withdrawn_is_not_recorded(ripen_app: Ripen,
                                                                  smtp: Smtp) -> None:
    sink, _ = smtp
    confirmed_lead(ripen_app, sink, "changed@example.com", persona="monika-marketing",
                   purposes=["email_marketing", "tracking"])
    tick(ripen_app)
    match = PIXEL.search(_html(marketing(sink)[-1]))
    assert match
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("changed@example.com")
        assert lead is not None
        lead.tracking_consent = False
        uow.add(lead)
        uow.commit()
    ripen_app.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    assert client(ripen_app).get(match.group(1)).status_code == 200
    assert _opens(ripen_app) == []


def test_enrolment_starts_at_the_stage_the_first_action_implies(ripen_app: Ripen,
                                                                smtp: Smtp) -> None:
    """Asked for the EVA/BEW selection checklist on the form: the journey starts at BEW."""
    sink, _ = smtp
    web = client(ripen_app)
    web.post("/subscribe", data=form("evaluator@example.com", persona="monika-marketing",
                                     content="mm-checkliste-auswahl"))
    web.post(confirm_path(sink.parsed()[-1]))
    confirmed_lead(ripen_app, sink, "newcomer@example.com", persona="monika-marketing")
    assert enrollments(ripen_app) == [("monika-marketing", "BEW", "active", None),
                                      ("monika-marketing", "INF", "active", None)]
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("evaluator@example.com")
        assert lead is not None
        assert lead.funnel_stage == "BEW"

    unknown = web.post("/subscribe", data=form("x@example.com", content="no-such-item"),
                       headers={"accept": "application/json"})
    assert unknown.status_code in (400, 422)
    assert "unknown content" in unknown.text


def test_the_sign_up_form_carries_the_offered_content(ripen_app: Ripen) -> None:
    """/subscribe?content=ID puts a known item in a hidden field; an unknown one is dropped."""
    web = client(ripen_app)
    known = web.get("/subscribe", params={"content": "mm-checkliste-auswahl"}).text
    assert '<input type="hidden" name="content" value="mm-checkliste-auswahl">' in known
    unknown = web.get("/subscribe", params={"content": "<script>"}).text
    assert '<input type="hidden" name="content" value="">' in unknown
