"""Handover end to end with real parts: aiosmtpd, a loopback CRM receiver verifying with the
standardwebhooks library, the HTTP app, SQLite and PostgreSQL, on a virtual clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from engine.store.tables import Event, Handover, Lead, WebhookDelivery
from engine.webhooks import LEASE, WebhookSender, new_secret, replay
from tests.conftest import API_KEY, SmtpSink
from tests.consent_helpers import client, confirm_path, form
from tests.factories import NOW, REPO, example_tree
from tests.integration.test_journeys import (
    Smtp,
    click_first_link,
    enrollments,
    marketing,
    next_mail,
    tick,
)
from tests.receiver import Answer, Receiver, running

FAST_LANE = re.compile(r"https://ripen\.example(/fast-lane/[A-Za-z0-9_.\-]+)")
ANSWER = re.compile(r"https://ripen\.example(/h/[A-Za-z0-9_.\-]+)")
SECRET = new_secret()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running(SECRET) as crm:
        yield crm


@pytest.fixture
def app(migrated: Engine, smtp: Smtp, receiver: Receiver, tmp_path: Path) -> Ripen:
    """The example configuration, its CRM endpoint pointed at the loopback receiver."""
    root = tmp_path / "ripen"
    example_tree(root)
    sla = root / "config" / "sla.yaml"
    text = sla.read_text()
    assert "url: https://crm.example.com/hooks/ripen" in text
    events = ("events: [handover.created, handover.escalated, lead.unsubscribed, "
              "consent.withdrawn,\n             lead.erased]")
    assert events in text
    sla.write_text(text.replace(
        "url: https://crm.example.com/hooks/ripen",
        f"url: {receiver.url}\n    allow_private: true\n    timeout_seconds: 1").replace(
        events, "events: [handover.created, handover.escalated, handover.answered, "
        "handover.closed]"))
    _, port = smtp
    settings = load_settings(mail_url=f"smtp://127.0.0.1:{port}?starttls=no",
                             public_base_url="https://ripen.example", api_keys=[API_KEY],
                             secret_keys=["k" * 40])
    return Ripen(settings=settings, config=load_and_compile(ConfigPaths.under(root)),
                 db=migrated, clock=ManualClock(NOW),
                 environ={"RIPEN_WEBHOOK_SECRET_CRM": SECRET})


def _signed_up(app: Ripen, sink: SmtpSink, email: str, **fields: Any) -> None:
    web = client(app)
    web.post("/subscribe", data=form(email, **{"persona": "monika-marketing", **fields}))
    web.post(confirm_path(sink.parsed()[-1]))


def _handovers(app: Ripen) -> list[Handover]:
    with app.uow() as uow:
        return list(uow.session.exec(select(Handover).order_by(Handover.id)).all())


def _lead(app: Ripen, email: str) -> Lead:
    with app.uow() as uow:
        lead = uow.lead_by_email(email)
    assert lead is not None
    return lead


def _text(message: Any) -> str:
    return str(message.get_body(("plain",)).get_content())


def test_fast_lane_from_inf_with_score_zero_hands_over_at_once(app: Ripen, smtp: Smtp,
                                                               receiver: Receiver) -> None:
    sink, _ = smtp
    _signed_up(app, sink, "eilig@example.com", phone="+49 30 1234567",
               purposes=["email_marketing", "phone"])
    tick(app)
    [inf] = marketing(sink)
    path = FAST_LANE.search(_text(inf))
    assert path, _text(inf)
    web = client(app)
    page = web.get(path.group(1))
    assert page.status_code == 200
    assert _handovers(app) == []  # a GET (mail scanner) hands nobody over
    assert web.post(path.group(1)).status_code == 200

    [handover] = _handovers(app)
    assert (handover.reason, handover.status, handover.rep_id) == (
        "fast_lane", "open", "anna-nord")
    [payload] = receiver.verified()  # delivered before the next tick, and signed
    schema = json.loads((REPO / "docs" / "handover.schema.json").read_text())
    jsonschema.validate(payload, schema)  # the schema published for receivers holds
    data = payload["data"]
    assert data["reason"] == "fast_lane"
    assert data["reason_detail"] == "contact request"
    assert data["score"]["implicit"] == 0.0
    assert data["lead"]["phone"] == "+49 30 1234567"  # phone consent was given
    assert data["consent"]["phone"] is True
    assert [c["content"] for c in data["content_consumed"]] == []
    assert data["journey_history"][0]["status"] == "paused"
    assert data["links"]["accept"].startswith("https://ripen.example/h/")
    assert _lead(app, "eilig@example.com").sales_stage == "MQL"
    notice = [m for m in sink.parsed() if m["To"] == "anna.nord@example.com"]
    assert len(notice) == 1
    assert "Sales Fast Lane" in _text(notice[0])

    # Paused: no nurturing mail while sales has the lead; a second request changes nothing.
    before = len(marketing(sink))
    for _ in range(14):
        app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
        tick(app)
    assert len(marketing(sink)) == before
    web.post(path.group(1))
    assert len(_handovers(app)) == 1
    assert len(receiver.requests) == 1


def test_phone_is_withheld_without_phone_consent(app: Ripen, smtp: Smtp,
                                                 receiver: Receiver) -> None:
    sink, _ = smtp
    _signed_up(app, sink, "nophone@example.com", phone="+49 30 7654321")
    tick(app)
    path = FAST_LANE.search(_text(marketing(sink)[-1]))
    assert path
    client(app).post(path.group(1))
    [payload] = receiver.verified()
    assert payload["data"]["lead"]["phone"] is None
    assert payload["data"]["consent"]["phone"] is False


def test_mql_reject_recycle_ripen_again_accept_won_after_sales(app: Ripen, smtp: Smtp,
                                                               receiver: Receiver) -> None:
    """The blue lines on a virtual clock, answered through the rep's link and the API."""
    sink, _ = smtp
    web = client(app)
    headers = {"authorization": f"Bearer {API_KEY}"}
    _signed_up(app, sink, "monika@example.com", first_name="Monika",
               content="mm-checkliste-auswahl")  # first action: an evaluation checklist
    assert enrollments(app) == [("monika-marketing", "BEW", "active", None)]
    tick(app)
    [roi] = marketing(sink)
    click_first_link(app, roi)  # the ROI calculator (a tool) at BEW: the MQL rule holds

    [first] = _handovers(app)
    assert (first.reason, first.status) == ("threshold", "open")
    app.send_webhooks()
    [created] = receiver.verified()
    assert created["data"]["reason_detail"].startswith("MQL rule 2: stage BEW ≥ BEW, "
                                                       "downloaded case_study/checklist/tool")
    notice = [m for m in sink.parsed() if m["To"] == "anna.nord@example.com"][-1]
    answer = ANSWER.search(_text(notice))
    assert answer
    assert "Ablehnen: Noch nicht kaufbereit" in web.get(answer.group(1)).text
    rejected = web.post(answer.group(1), data={"decision": "reject:not_ready"})
    assert rejected.status_code == 200
    lead = _lead(app, "monika@example.com")
    assert (lead.sales_stage, _handovers(app)[0].rejection_code) == (None, "not_ready")
    assert enrollments(app) == [
        ("monika-marketing", "BEW", "exited", "rejected:not_ready"),
        ("wiedervorlage", "EVA", "active", None)]

    # Cool-down (30 days): nothing is sent; then the recycle journey starts.
    before = len(marketing(sink))
    for _ in range(29):
        app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
        tick(app)
    assert len(marketing(sink)) == before
    proof = next_mail(app, sink)  # (Christmas holidays defer it a few days)
    assert proof["To"] == "monika@example.com"
    assert "Kundenstimmen" in str(proof["Subject"])
    click_first_link(app, proof)  # a video: engagement, but not yet the MQL rule
    assert len(_handovers(app)) == 1
    explained = app.handovers.explain("monika@example.com")
    assert explained is not None
    assert [c.holds for c in explained.checks] == [False, False]

    # Ripens again: a case study downloaded on the website.
    response = web.post("/api/events", headers=headers, json={
        "email": "monika@example.com", "type": "download",
        "content_id": "mm-case-study-softwarehaus"})
    assert response.json() == {"status": "recorded", "handover": True}
    second = _handovers(app)[1]
    accepted = web.post(f"/api/handovers/{second.public_id}/accept", headers=headers)
    assert accepted.json()["status"] == "accepted"
    assert _lead(app, "monika@example.com").sales_stage == "SAL"
    for stage in ("SFC", "BAN", "ANG"):
        moved = web.post(f"/api/leads/{lead.public_id}/stage", headers=headers,
                         json={"stage": stage})
        assert moved.json()["sales_stage"] == stage
    won = web.post(f"/api/leads/{lead.public_id}/stage", headers=headers,
                   json={"stage": "ABS"})
    assert won.json() == {"lead": lead.public_id, "sales_stage": None, "funnel_stage": "AFS"}
    assert enrollments(app)[-1] == ("after-sales", "AFS", "active", None)
    assert [h.outcome for h in _handovers(app)] == [None, "won"]
    app.send_webhooks()  # what the next tick's send-webhooks task does
    events = [(p["type"], p["data"].get("outcome")) for p in receiver.verified()]
    # New handovers are pushed at once; answers and closes go with the next tick's send.
    assert events == [("handover.created", None), ("handover.created", None),
                      ("handover.answered", None), ("handover.answered", None),
                      ("handover.closed", "won")]


def test_the_timeline_tells_the_whole_story_doi_mail_click_handover_reject_recycle(
        app: Ripen, smtp: Smtp) -> None:
    """`ripen lead show`'s engine: after DOI → mail → click → handover → reject → recycle,
    the timeline has both journeys (the first exited by the rejection), every mail of the
    lead with the clicked one marked, and the moments in the order they happened."""
    from engine.store.tables import MailOutbox
    from engine.timeline import UnknownLead, timeline

    sink, _ = smtp
    web = client(app)
    _signed_up(app, sink, "story@example.com", first_name="Sina",
               content="mm-checkliste-auswahl")
    tick(app)
    [roi] = marketing(sink)
    click_first_link(app, roi)
    [handover] = _handovers(app)
    answer = ANSWER.search(_text([m for m in sink.parsed()
                                  if m["To"] == "anna.nord@example.com"][-1]))
    assert answer
    web.post(answer.group(1), data={"decision": "reject:not_ready"})
    for _ in range(40):
        app.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
        tick(app)
    assert len(marketing(sink)) >= 2  # the recycle journey's first mail went out

    story = timeline(app.uow, "Story@Example.com", app.handovers.explain)
    with pytest.raises(UnknownLead, match=r"no lead with the address nobody@example\.com"):
        timeline(app.uow, "nobody@example.com", app.handovers.explain)
    with app.uow() as uow:
        lead = uow.lead_by_email("story@example.com")
        assert lead is not None
        rows = uow.rows_of_lead(MailOutbox, lead.id or 0)
    assert (story.email, story.name, story.persona) == ("story@example.com", "Sina",
                                                        "monika-marketing")
    assert [(j.journey, j.status) for j in story.journeys] == [
        ("monika-marketing", "exited"), ("wiedervorlage", "active")]
    assert len(story.mails) == len(rows)  # the DOI, the rep's notice, every marketing mail
    nurture = [m for m in story.mails if m.category == "nurture"]
    assert nurture[0].subject == roi["Subject"]
    assert nurture[0].clicked
    assert not any(m.clicked for m in nurture[1:])
    kinds_in_order = [m.kind for m in story.moments]
    assert kinds_in_order[0] == "consent"
    assert [m.at for m in story.moments] == sorted(m.at for m in story.moments)
    whats = [m.what for m in story.moments]
    order = [whats.index("email_marketing confirmed"),
             next(i for i, w in enumerate(whats) if w.startswith("handed to anna")),
             whats.index("sales rejected (not_ready)"),
             whats.index("joined wiedervorlage")]
    assert order == sorted(order)
    assert handover.rep_id is not None


TIMELINE = re.compile(r"https://ripen\.example(/l/[A-Za-z0-9_.\-]+)")


def test_the_rep_sees_the_lead_answers_with_a_note_and_reads_its_timeline(
        app: Ripen, smtp: Smtp, receiver: Receiver) -> None:
    """The answer page names the lead and takes a note, which the CRM gets in
    handover.answered; the notice's read-only timeline link shows the lead's story, for 30
    days, and never again after an erasure."""
    sink, _ = smtp
    web = client(app)
    _signed_up(app, sink, "rita@example.com", first_name="Rita", job_title="CMO",
               content="mm-checkliste-auswahl")
    tick(app)
    click_first_link(app, marketing(sink)[-1])
    [handover] = _handovers(app)
    notice = _text([m for m in sink.parsed() if m["To"] == "anna.nord@example.com"][-1])
    answer, view = ANSWER.search(notice), TIMELINE.search(notice)
    assert answer
    assert view
    page = web.get(answer.group(1))
    assert "<strong>Rita</strong>, CMO" in page.text
    assert 'name="note"' in page.text
    story = web.get(view.group(1))
    assert story.status_code == 200
    assert "rita@example.com" in story.text
    assert "email_marketing confirmed" in story.text
    assert "/workbench" not in story.text  # read-only: no way into the workbench

    note = "Ruft nach der Messe zurück,\r\nBudget erst 2027 \x07"
    done = web.post(answer.group(1), data={"decision": "reject:not_ready", "note": note})
    assert done.status_code == 200
    app.send_webhooks()
    answered = [p for p in receiver.verified() if p["type"] == "handover.answered"]
    assert [p["data"] for p in answered] == [{
        "handover_id": handover.public_id, "status": "rejected", "reason": "not_ready",
        "note": "Ruft nach der Messe zurück, Budget erst 2027"}]
    schema = json.loads((REPO / "docs" / "handover.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(answered[0], schema)

    app.clock.advance(timedelta(days=31))  # type: ignore[attr-defined]
    assert web.get(view.group(1)).status_code == 404  # expired with the answer link
    assert web.get("/l/" + "x" * 40).status_code == 404
    from engine import gdpr
    from engine.tokens import Purpose

    fresh = "/l/" + app.tokens.dumps(Purpose.LEAD_VIEW, _lead(app, "rita@example.com").public_id,
                                     now=app.clock())
    assert web.get(fresh).status_code == 200
    gdpr.erase(app.uow, "rita@example.com", clock=app.clock, webhooks=app.config.sla.webhooks)
    assert web.get(fresh).status_code == 404  # an erased person's story is gone


def test_sales_answers_are_checked(app: Ripen, smtp: Smtp) -> None:
    sink, _ = smtp
    _signed_up(app, sink, "check@example.com")
    tick(app)
    client(app).post(FAST_LANE.search(_text(marketing(sink)[-1])).group(1))  # type: ignore[union-attr]
    [handover] = _handovers(app)
    web = client(app)
    headers = {"authorization": f"Bearer {API_KEY}"}
    url = f"/api/handovers/{handover.public_id}"
    assert web.post(f"{url}/accept").status_code == 401
    no_reason = web.post(f"{url}/reject", headers=headers, json={"reason": "bogus"})
    assert no_reason.status_code == 422
    assert no_reason.json()["error"].startswith("a rejection needs a reason: not_ready, ")
    assert web.post("/api/handovers/nope/accept", headers=headers).status_code == 404
    lead = _lead(app, "check@example.com")
    early = web.post(f"/api/leads/{lead.public_id}/stage", headers=headers,
                     json={"stage": "SFC"})
    assert early.status_code == 409
    assert web.post(f"{url}/accept", headers=headers).json()["status"] == "accepted"
    assert web.post(f"{url}/accept", headers=headers).status_code == 200  # idempotent
    late = web.post(f"{url}/reject", headers=headers, json={"reason": "not_ready"})
    assert (late.status_code, late.json()) == (409, {"error": "this handover was already "
                                                              "accepted"})
    assert web.get("/h/forged-token").status_code == 404


def test_unanswered_handover_escalates_once(app: Ripen, smtp: Smtp,
                                            receiver: Receiver) -> None:
    sink, _ = smtp
    _signed_up(app, sink, "slow@example.com")
    tick(app)
    client(app).post(FAST_LANE.search(_text(marketing(sink)[-1])).group(1))  # type: ignore[union-attr]
    assert app.handovers.escalate_overdue() == []
    app.clock.advance(timedelta(days=2, minutes=1))  # type: ignore[attr-defined]
    [escalated] = app.handovers.escalate_overdue()
    assert app.handovers.escalate_overdue() == []
    app.send_webhooks()
    app.send_mail()
    [handover] = _handovers(app)
    assert (handover.public_id, handover.breached) == (escalated, True)
    assert [p["type"] for p in receiver.verified()] == ["handover.created",
                                                        "handover.escalated"]
    assert [m["Subject"] for m in sink.parsed() if m["To"] == "vertriebsleitung@example.com"
            ] == ["SLA verletzt: Lead-Übergabe an anna-nord unbeantwortet"]


# --- the receiver misbehaves ---------------------------------------------------------------

def _one_handover(app: Ripen, sink: SmtpSink, receiver: Receiver) -> WebhookDelivery:
    receiver.script = [Answer(503)]  # the at-once attempt fails; the tests drive the rest
    _signed_up(app, sink, f"hook{len(_handovers(app))}@example.com")
    tick(app)
    client(app).post(FAST_LANE.search(_text(marketing(sink)[-1])).group(1))  # type: ignore[union-attr]
    with app.uow() as uow:
        [row] = uow.webhooks(status="retry")
    return row


def _sender(app: Ripen, transport: httpx.BaseTransport | None = None) -> WebhookSender:
    return WebhookSender(uow=app.uow, endpoints={e.id: e for e in app.config.sla.webhooks},
                         secrets=app.webhook_secrets(), clock=app.clock, stamp=app.wall,
                         client=httpx.Client(transport=transport or httpx.HTTPTransport()),
                         jitter=lambda: 0.5)


def _row(app: Ripen, row_id: int) -> WebhookDelivery:
    with app.uow() as uow:
        row = uow.webhook(row_id)
    assert row is not None
    return row


def _until_due(app: Ripen, row_id: int) -> timedelta:
    row = _row(app, row_id)
    assert row.next_attempt_at is not None
    wait = row.next_attempt_at - app.clock()
    app.clock.now = row.next_attempt_at  # type: ignore[attr-defined]
    return wait


def test_500_429_timeout_then_success_keep_the_schedule_and_one_id(
        app: Ripen, smtp: Smtp, receiver: Receiver) -> None:
    sink, _ = smtp
    row = _one_handover(app, sink, receiver)
    sender = _sender(app)
    receiver.script = [Answer(500), Answer(429, {"Retry-After": "600"}), Answer(204, delay=1.5),
                       Answer(302, {"Location": "http://127.0.0.1:9/evil"})]
    waits = []
    outcomes = []
    for _ in range(5):
        waits.append(_until_due(app, row.id or 0))
        outcomes.append(dict(sender.deliver()))
    assert outcomes == [{"retry": 1}] * 4 + [{"delivered": 1}]
    assert waits[1] == timedelta(minutes=5)       # after the first 503: 5 min (jitter 0)
    assert waits[2] == timedelta(minutes=30)      # after 500
    assert waits[3] == timedelta(hours=2)         # 429 asked for 10 min; the schedule is longer
    assert _row(app, row.id or 0).status == "delivered"
    assert len(set(receiver.ids())) == 1          # every attempt carries the same webhook-id
    assert len(receiver.verified()) == 6
    assert "redirect not followed" not in (_row(app, row.id or 0).last_error or "")


def test_retry_after_longer_than_the_schedule_is_honoured(app: Ripen, smtp: Smtp,
                                                          receiver: Receiver) -> None:
    sink, _ = smtp
    row = _one_handover(app, sink, receiver)
    _until_due(app, row.id or 0)
    receiver.script = [Answer(429, {"Retry-After": "7200"})]
    assert dict(_sender(app).deliver()) == {"retry": 1}
    assert _until_due(app, row.id or 0) == timedelta(hours=2)


def test_410_disables_the_endpoint_and_replay_delivers_with_the_same_id(
        app: Ripen, smtp: Smtp, receiver: Receiver) -> None:
    sink, _ = smtp
    row = _one_handover(app, sink, receiver)
    _until_due(app, row.id or 0)
    receiver.script = [Answer(410)]
    assert dict(_sender(app).deliver()) == {"disabled": 1}
    calls = len(receiver.requests)
    _signed_up(app, sink, "after410@example.com")  # a new handover: the endpoint stays off
    tick(app)
    client(app).post(FAST_LANE.search(_text(marketing(sink)[-1])).group(1))  # type: ignore[union-attr]
    with app.uow() as uow:
        assert [r.status for r in uow.webhooks()] == ["disabled", "disabled"]
    assert len(receiver.requests) == calls  # nothing was sent to a gone endpoint
    replay(app.uow, row.id or 0, app.clock())  # the operator re-enables it by replaying
    assert dict(_sender(app).deliver(ids=[row.id or 0])) == {"delivered": 1}
    assert receiver.ids().count(row.webhook_id) == 3


def test_exhausted_retries_go_to_the_dead_letter_and_replay_delivers(
        app: Ripen, smtp: Smtp, receiver: Receiver) -> None:
    sink, _ = smtp
    row = _one_handover(app, sink, receiver)
    sender = _sender(app)
    attempts = 1
    while _row(app, row.id or 0).status == "retry":
        _until_due(app, row.id or 0)
        receiver.script = [Answer(503)]
        sender.deliver()
        attempts += 1
    dead = _row(app, row.id or 0)
    assert dead.status == "dead"
    assert app.clock() - dead.created_at <= timedelta(days=5)
    assert attempts >= 9
    replay(app.uow, row.id or 0, app.clock())
    assert dict(sender.deliver()) == {"delivered": 1}
    assert set(receiver.ids()) == {row.webhook_id}


class DyingTransport(httpx.HTTPTransport):
    """The sender process dies after the receiver got the request, before recording it."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        raise KeyboardInterrupt


def test_a_sender_dying_mid_delivery_loses_nothing_and_resends_the_same_id(
        app: Ripen, smtp: Smtp, receiver: Receiver) -> None:
    sink, _ = smtp
    row = _one_handover(app, sink, receiver)
    _until_due(app, row.id or 0)
    with pytest.raises(KeyboardInterrupt):
        _sender(app, DyingTransport()).deliver()
    assert _row(app, row.id or 0).status == "delivering"
    assert dict(_sender(app).deliver()) == {}  # the lease still holds
    app.clock.advance(LEASE + timedelta(minutes=1))  # type: ignore[attr-defined]
    assert dict(_sender(app).deliver()) == {"delivered": 1}
    assert receiver.ids() == [row.webhook_id] * 3  # at-once 503, the lost one, the resend


def test_explain_handovers_list_replay_and_routing_report(app: Ripen, smtp: Smtp,
                                                          receiver: Receiver,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """The operator's commands, run through the CLI against the same database."""
    from typer.testing import CliRunner

    from ripen import cli
    from ripen.cli import sales

    sink, _ = smtp
    row = _one_handover(app, sink, receiver)
    monkeypatch.setattr(sales, "open_ripen", lambda: _Same(app))
    runner = CliRunner()
    explained = runner.invoke(cli.app, ["explain", "hook0@example.com"])
    assert explained.exit_code == 0, explained.output
    assert "grade D4" in explained.output
    assert "MQL rule 1: does not hold — fit D ≥ B ✗; engagement 0.0 ≥ 60 ✗" in explained.output
    assert "fast_lane → anna-nord: open" in explained.output
    listed = runner.invoke(cli.app, ["handovers", "list", "--status", "retry"])
    assert row.webhook_id in listed.output
    replayed = runner.invoke(cli.app, ["handovers", "replay", str(row.id)])
    assert replayed.exit_code == 1  # still retrying: replay refuses, it will be sent anyway
    report = runner.invoke(cli.app, ["routing", "report"])
    assert "anna-nord" in report.output
    assert "handovers" in report.output


class _Same:
    """`open_ripen()` for the test: the test's container, not disposed after the command."""

    def __init__(self, app: Ripen) -> None:
        self.app = app

    def __enter__(self) -> Ripen:
        return self.app

    def __exit__(self, *args: object) -> None:
        return None


# --- profile and BANT from the CRM; the fast-lane signal -------------------------------------

def test_a_pricing_page_visit_hands_over_a_well_fitting_lead_at_once(
        app: Ripen, smtp: Smtp, receiver: Receiver) -> None:
    """The configured signal (visit /preise with fit ≥ B) needs fit: first it does nothing;
    after the CRM sets the company's industry and size it hands the lead over at once."""
    sink, _ = smtp
    _signed_up(app, sink, "peter@example.com", persona="peter-produktionsleiter",
               job_title="Produktionsleiter", company="Stahlbau Nord GmbH")
    web = client(app)
    headers = {"authorization": f"Bearer {API_KEY}"}
    visit = {"email": "peter@example.com", "type": "visit", "page": "/preise"}
    assert web.post("/api/events", headers=headers, json=visit).json() == {
        "status": "recorded", "handover": False}  # title only: 30 points, fit C
    lead = _lead(app, "peter@example.com")

    profile = web.post(f"/api/leads/{lead.public_id}/profile", headers=headers,
                       json={"industry": "automotive", "company_size": 450, "region": "de"})
    assert profile.status_code == 200, profile.text
    assert profile.json()["grade"][0] == "A"  # 30 + 25 + 20 + 10 points
    assert profile.json()["handover"] is None  # fit alone is no MQL
    app.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    answer = web.post("/api/events", headers=headers, json=visit)
    assert answer.json() == {"status": "recorded", "handover": True}
    [handover] = _handovers(app)
    assert handover.reason == "fast_lane"
    [payload] = receiver.verified()  # pushed right after the request
    assert payload["data"]["reason_detail"] == "signal visit /preise"
    explained = app.handovers.explain("peter@example.com")
    assert explained is not None
    rules = {line.rule_id for line in explained.score.lines if line.kind == "explicit"}
    assert rules == {"fit.title", "fit.industry", "fit.company_size", "fit.region"}


def test_bant_from_a_qualification_call_is_scored_and_can_make_an_mql(
        app: Ripen, smtp: Smtp, receiver: Receiver) -> None:
    """Engaged but fit C: no MQL. BANT and the industry from a call make it fit A → MQL."""
    sink, _ = smtp
    _signed_up(app, sink, "bant@example.com", persona="peter-produktionsleiter",
               job_title="Werkleiter", company="Gießerei Süd AG")
    web = client(app)
    headers = {"authorization": f"Bearer {API_KEY}"}
    for content in ("pp-mes-einfuehrung-guide", "pp-shopfloor-video", "pp-mes-vergleich"):
        web.post("/api/events", headers=headers, json={
            "email": "bant@example.com", "type": "download", "content_id": content})
    before = app.handovers.explain("bant@example.com")
    assert before is not None
    assert (before.score.fit, before.score.implicit >= 60) == ("C", True)
    assert _handovers(app) == []
    lead = _lead(app, "bant@example.com")
    url = f"/api/leads/{lead.public_id}/profile"
    bant = web.post(url, headers=headers, json={
        "bant_authority": True, "bant_need": True, "bant_budget": True,
        "bant_timeline_months": 6})
    assert (bant.json()["grade"][0], bant.json()["handover"]) == ("C", None)  # 30 + 15
    answer = web.post(url, headers=headers, json={"industry": "metalworking"})
    assert answer.status_code == 200, answer.text
    [handover] = _handovers(app)
    assert (answer.json()["handover"], handover.reason) == (handover.public_id, "threshold")
    after = app.handovers.explain("bant@example.com")
    assert after is not None
    explicit = {line.rule_id: line.delta for line in after.score.lines
                if line.kind == "explicit"}
    assert explicit == {"fit.title": 30, "fit.industry": 25, "bant.authority": 5,
                        "bant.need": 5, "bant.budget": 3, "bant.timeline": 2}
    [payload] = receiver.verified()
    assert payload["data"]["reason_detail"].startswith("MQL rule 1: fit A ≥ B, engagement ")
    # Taking a flag back writes the difference, not a new total.
    web.post(url, headers=headers, json={"bant_budget": False})
    later = app.handovers.explain("bant@example.com")
    assert later is not None
    assert [(line.rule_id, line.delta) for line in later.score.lines
            if line.rule_id == "bant.budget"] == [("bant.budget", 3), ("bant.budget", -3)]


def test_profile_changes_are_checked(app: Ripen, smtp: Smtp) -> None:
    sink, _ = smtp
    _signed_up(app, sink, "solo@example.com")  # no company
    lead = _lead(app, "solo@example.com")
    web = client(app)
    headers = {"authorization": f"Bearer {API_KEY}"}
    url = f"/api/leads/{lead.public_id}/profile"
    assert web.post(url, json={"region": "DE"}).status_code == 401
    assert web.post("/api/leads/nobody/profile", headers=headers,
                    json={"region": "DE"}).status_code == 404
    no_company = web.post(url, headers=headers, json={"industry": "automotive"})
    assert (no_company.status_code, no_company.json()["error"]) == (
        422, "industry, company size and region belong to the lead's company: give the "
             "company name too")
    for bad in ({"region": "Deutschland"}, {"company_size": 0}, {"color": "blue"},
                {"job_title": "CEO\r\nBcc: all@example.com"}, {}):
        assert web.post(url, headers=headers, json=bad).status_code == 422, bad
    assert _lead(app, "solo@example.com").job_title is None  # nothing changed
    ok = web.post(url, headers=headers, json={"company": "Solo GmbH", "region": "AT"})
    assert ok.status_code == 200
    with app.uow() as uow:
        account = uow.account_by_name("Solo GmbH")
    assert account is not None
    assert (account.region, _lead(app, "solo@example.com").account_id) == ("AT", account.id)


def test_a_company_change_marks_its_other_contacts_for_scoring(app: Ripen, smtp: Smtp) -> None:
    sink, _ = smtp
    for email in ("a@werk.example", "b@werk.example"):
        _signed_up(app, sink, email, persona="peter-produktionsleiter",
                   job_title="Produktionsleiter", company="Werk AG")
    app.handovers.qualify_due()
    assert _lead(app, "b@werk.example").qualify_at is None
    first = _lead(app, "a@werk.example")
    client(app).post(f"/api/leads/{first.public_id}/profile",
                     headers={"authorization": f"Bearer {API_KEY}"},
                     json={"industry": "automotive", "company_size": 300})
    assert _lead(app, "b@werk.example").qualify_at is not None
    app.handovers.qualify_due()
    colleague = app.handovers.explain("b@werk.example")
    assert colleague is not None
    assert colleague.score.fit == "A"  # title 30 + industry 25 + size 20


def test_a_batch_of_events_moves_scores_and_hands_over_like_single_events(
        app: Ripen, smtp: Smtp, receiver: Receiver) -> None:
    """POST /api/events/batch: stage moves in order, duplicates and unknown leads counted,
    each lead qualified once; a bad event refuses the whole batch."""
    sink, _ = smtp
    _signed_up(app, sink, "batch@example.com")  # Monika's journey, at INF
    web = client(app)
    headers = {"authorization": f"Bearer {API_KEY}"}
    bad = web.post("/api/events/batch", headers=headers, json={"events": [
        {"email": "batch@example.com", "type": "download",
         "content_id": "mm-buyer-persona-leitfaden"},
        {"email": "batch@example.com", "type": "download", "content_id": "no-such-item"}]})
    assert (bad.status_code, bad.json()["events"]) == (
        422, [{"index": 1, "error": 'unknown content "no-such-item"'}])
    assert enrollments(app) == [("monika-marketing", "INF", "active", None)]  # unchanged
    events = [
        {"email": "batch@example.com", "type": "download",
         "content_id": "mm-buyer-persona-leitfaden", "idempotency_key": "k1"},
        {"email": "batch@example.com", "type": "download",
         "content_id": "mm-buyer-persona-leitfaden", "idempotency_key": "k1"},
        {"email": "nobody@example.com", "type": "visit", "page": "/"},
        {"email": "batch@example.com", "type": "download", "content_id": "mm-roi-rechner"}]
    answer = web.post("/api/events/batch", headers=headers, json={"events": events})
    assert answer.json() == {"recorded": 2, "duplicates": 1, "unknown_leads": 1,
                             "handovers": 1}
    [handover] = _handovers(app)
    assert handover.reason == "threshold"  # BEW and a tool downloaded: MQL rule 2
    assert enrollments(app) == [("monika-marketing", "BEW", "paused", None)]
    [payload] = receiver.verified()
    assert payload["data"]["reason_detail"].startswith("MQL rule 2: stage BEW ≥ BEW")
    explained = app.handovers.explain("batch@example.com")
    assert explained is not None
    assert sorted(line.rule_id for line in explained.score.lines) == [
        "implicit.download.BEF", "implicit.download.BEW"]
    again = web.post("/api/events/batch", headers=headers, json={"events": events[:1]})
    assert again.json()["duplicates"] == 1  # the key counts across batches too


def test_a_notice_template_failing_on_one_lead_stops_no_handover(
        app: Ripen, smtp: Smtp, receiver: Receiver, tmp_path: Path) -> None:
    """A notice template that fails on one lead's values (a method called on an empty
    company: every branch checks out in `ripen validate`) stops neither that handover nor
    the others of the batch: each webhook goes out, the rep gets ripen's plain notice with
    the answer link, and the lead's timeline records why."""
    root = tmp_path / "ripen"
    notice = root / "templates" / "email" / "transactional" / "handover_notice.txt.j2"
    text = notice.read_text(encoding="utf-8")
    assert "Phase: {{ lead.stage }}" in text
    notice.write_text(text.replace("Phase: {{ lead.stage }}",
                                   "Phase: {{ lead.stage }} · {{ lead.company.upper() }}"),
                      encoding="utf-8")
    load_and_compile(ConfigPaths.under(root))  # valid: company is text, text has upper()
    sink, _ = smtp
    _signed_up(app, sink, "firma@example.com", company="Muster AG")
    _signed_up(app, sink, "privat@example.com")  # no company: the template fails for her
    events = [{"email": email, "type": "download", "content_id": item}
              for email in ("firma@example.com", "privat@example.com")
              for item in ("mm-buyer-persona-leitfaden", "mm-roi-rechner")]
    answer = client(app).post("/api/events/batch", json={"events": events},
                              headers={"authorization": f"Bearer {API_KEY}"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["handovers"] == 2
    assert sorted(p["data"]["lead"]["email"] for p in receiver.verified()) == [
        "firma@example.com", "privat@example.com"]
    leads = ("firma@example.com", "privat@example.com")
    notices = {email: [_text(m) for m in sink.parsed() if m["To"] not in leads
                       and email in _text(m)] for email in leads}
    [templated], [plain] = notices["firma@example.com"], notices["privat@example.com"]
    assert "· MUSTER AG" in templated
    assert "schlichte Fassung" in plain
    assert ANSWER.search(plain)  # the rep can accept or reject as always
    privat = _lead(app, "privat@example.com")
    with app.uow() as uow:
        failed = list(uow.session.exec(select(Event).where(
            Event.lead_id == privat.id, Event.type == "notice_template_failed")).all())
    assert len(failed) == 1
    assert "upper" in failed[0].data["problem"]
