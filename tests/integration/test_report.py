"""`ripen report`'s numbers against counts made by hand for a known history."""

from __future__ import annotations

import json
import re
import secrets
from datetime import timedelta

import pytest

from engine import kept
from engine.bootstrap import Ripen
from engine.report import FunnelReport, funnel_report
from engine.report import period as period_of
from engine.store.tables import (
    Account,
    ConsentRecord,
    Event,
    Handover,
    MailOutbox,
    SendDeferral,
    SentContent,
    SignupAttempt,
    StageEntry,
)
from tests.conftest import API_KEY
from tests.consent_helpers import client
from tests.factories import NOW, lead

KEY = {"authorization": f"Bearer {API_KEY}"}


def _handover(lead_id: int, **fields: object) -> Handover:
    values: dict[str, object] = {"public_id": secrets.token_urlsafe(8), "lead_id": lead_id,
                                 "reason": "threshold", "created_at": NOW}
    values.update(fields)
    return Handover(**values)  # type: ignore[arg-type]


def _mail(key: str, status: str, **fields: object) -> MailOutbox:
    return MailOutbox(idempotency_key=key, kind="marketing", subject="s",
                      message_id=f"<{secrets.token_hex(6)}@x>", status=status,
                      created_at=NOW, **fields)  # type: ignore[arg-type]


def test_report_counts_match_a_known_history(ripen_app: Ripen) -> None:
    _known_history(ripen_app)
    day = timedelta(days=1)
    with ripen_app.uow() as uow:
        report = funnel_report(uow, NOW - 30 * day, NOW + 60 * day)
    data = report.as_json()
    assert {k: data["total"][k] for k in ("inquiries", "mql", "sal", "sql", "won")} == {
        "inquiries": 6, "mql": 4, "sal": 2, "sql": 2, "won": 1}
    assert data["total"]["conversions"] == {"inquiries_to_mql": 4 / 6, "mql_to_sal": 0.5,
                                            "sal_to_sql": 1.0, "sql_to_won": 0.5}
    assert (data["by_source"]["website"]["mql"], data["by_source"]["trade_fair"]["mql"]) == (
        3, 1)
    assert data["by_campaign"]["herbst"]["inquiries"] == 4
    assert (report.handovers, report.fast_lane, report.answered, report.breaches) == (5, 1, 3, 1)
    assert (report.hours_to_answer_median, report.rejection_reasons) == (96.0,
                                                                        {"not_ready": 1})
    assert (report.recycled, report.recycled_to_mql) == (1, 1)
    assert report.content == {"mm-roi-rechner": {
        "sends": 2, "clicks": 1, "downloads": 0, "stage_advances": 1, "unsubscribes": 1,
        "bounces": 1, "unsubscribe_rate": 0.5, "bounce_rate": 0.5}}
    assert report.journeys == {
        "monika-marketing": {"sends": 2, "unsubscribes": 1, "bounces": 1, "deferred": 2,
                             "unsubscribe_rate": 0.5, "bounce_rate": 0.5},
        "praxisbrief": {"sends": 0, "unsubscribes": 0, "bounces": 0, "deferred": 1}}
    assert report.policy == {"deferred": {"frequency_cap": 1, "quiet_hours": 2},
                             "suppressed": {"address suppressed (unsubscribed)": 1}}
    stages = {flow.stage: flow for flow in report.stages}
    assert [(s, stages[s].reached) for s in stages] == [("INF", 3), ("BEF", 3), ("EVA", 3),
                                                        ("BEW", 1)]
    assert (stages["BEF"].conversion, stages["BEW"].conversion) == (1.0, 1 / 3)
    assert (stages["INF"].stays, stages["INF"].days_median, stages["INF"].days_p90) == (
        2, 3.0, 4.0)
    assert (stages["BEF"].stays, stages["BEF"].days_median) == (1, 3.0)
    assert (stages["EVA"].stays, stages["BEW"].stays, stages["BEW"].days_median) == (0, 1, 0.0)
    assert [row["source"] for row in report.source_ranking] == ["website", "trade_fair"]
    assert report.data_quality == {"confirmed": 6, "missing_job_title": 2,
                                   "missing_company": 2, "missing_industry": 2,
                                   "missing_company_size": 2, "missing_region": 2,
                                   "merged_duplicates": 1, "refused_addresses": 1}
    # A kept report (the workbench's funnel) reads back as the same report.
    assert FunnelReport.from_json(json.loads(json.dumps(data))) == report




def test_the_api_serves_the_report_to_operators(ripen_app: Ripen) -> None:
    _known_history(ripen_app)
    api = client(ripen_app)
    period = {"since": (NOW - timedelta(days=30)).strftime("%Y-%m-%d"),
              "until": (NOW + timedelta(days=60)).strftime("%Y-%m-%d")}
    assert api.get("/reports/funnel", params=period).status_code == 401
    key = {"authorization": f"Bearer {API_KEY}"}
    answer = api.get("/reports/funnel", params=period, headers=key)
    assert answer.status_code == 200
    with ripen_app.uow() as uow:
        start, end = period_of(period["since"], period["until"], NOW)
        assert answer.json() == json.loads(json.dumps(funnel_report(uow, start,
                                                                    end).as_json()))
    page = api.get("/reports/funnel", params={**period, "format": "html"}, headers=key)
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.count('class="bar"') >= 4
    bad = api.get("/reports/funnel", params={"since": "yesterday"}, headers=key)
    assert (bad.status_code, bad.json()) == (
        400, {"error": 'since "yesterday" is not a date like 2026-10-01'})
    assert api.get("/reports/funnel", params={"format": "pdf"}, headers=key).status_code == 422


def _inquiries(page: str, persona: str) -> int:
    """The persona's inquiries in the funnel page's waterfall table."""
    found = re.search(rf"<tr><td>{re.escape(persona)}</td><td>(\d+)</td>", page)
    assert found is not None, page
    return int(found.group(1))


def test_the_workbench_funnel_is_the_kept_report_and_says_so(ripen_app: Ripen) -> None:
    """The funnel page reads the report the maintenance run kept (counting 100k leads per
    page view is too slow), names its time, and counts live when there is none or it is
    older than two maintenance intervals."""
    _known_history(ripen_app)
    api = client(ripen_app)
    assert api.get("/workbench/funnel", follow_redirects=False).status_code == 303  # login
    first = api.get("/workbench/funnel", headers=KEY)
    assert first.status_code == 200
    assert _inquiries(first.text, "monika-marketing") == 4
    assert "kept by the maintenance run (every 15 min)" in first.text
    assert "generated 2026-11-23 09:00 UTC" in first.text

    def one_more() -> None:
        with ripen_app.uow() as uow:
            uow.add(lead(source="website", persona_id="monika-marketing",
                         created_at=ripen_app.clock()))
            uow.commit()

    one_more()
    ripen_app.clock.advance(timedelta(minutes=20))  # type: ignore[attr-defined]
    again = api.get("/workbench/funnel", headers=KEY).text
    assert _inquiries(again, "monika-marketing") == 4  # the kept report, with its time
    assert "generated 2026-11-23 09:00 UTC" in again

    with ripen_app.uow() as uow:  # what the maintenance run's keep-funnel task does
        kept.keep_funnel(uow, ripen_app.clock(), ripen_app.monotonic)
    fresh = api.get("/workbench/funnel", headers=KEY).text
    assert (_inquiries(fresh, "monika-marketing"), "generated 2026-11-23 09:20 UTC" in fresh
            ) == (5, True)

    one_more()
    ripen_app.clock.advance(timedelta(minutes=31))  # two 15-min maintenance runs missed
    late = api.get("/workbench/funnel", headers=KEY).text
    assert (_inquiries(late, "monika-marketing"), "generated 2026-11-23 09:51 UTC" in late
            ) == (6, True)


def _known_history(ripen_app: Ripen) -> None:
    day = timedelta(days=1)
    with ripen_app.uow() as uow:
        werk = Account(name="Werk AG", industry="automotive", company_size=300, region="DE",
                       created_at=NOW)
        uow.add(werk)
        uow.flush()
        web = [lead(source="website", persona_id="monika-marketing", campaign="herbst",
                    job_title="CMO", account_id=werk.id) for _ in range(4)]
        fair = [lead(source="trade_fair", persona_id="peter-produktionsleiter")
                for _ in range(2)]
        old = lead(source="website", created_at=NOW - 200 * day)  # outside the period
        uow.add(*web, *fair, old)
        uow.flush()
        for person in (web[0], web[1], web[2], fair[0]):
            person.mql_at = NOW
        uow.add(
            _handover(web[0].id, status="closed", outcome="won", answered_at=NOW + 2 * day),
            _handover(web[1].id, status="accepted", answered_at=NOW + 4 * day),
            _handover(web[2].id, status="rejected", rejection_code="not_ready",
                      answered_at=NOW + 6 * day, reason="fast_lane"),
            _handover(fair[0].id, status="open", breached=True),
            SentContent(lead_id=web[0].id, content_id="mm-roi-rechner",
                        journey_id="monika-marketing", step_id="x", sent_at=NOW),
            SentContent(lead_id=web[1].id, content_id="mm-roi-rechner",
                        journey_id="monika-marketing", step_id="x", sent_at=NOW),
            Event(lead_id=web[0].id, type="click", content_id="mm-roi-rechner",
                  occurred_at=NOW, recorded_at=NOW),
            Event(lead_id=web[1].id, type="click", content_id="mm-roi-rechner",
                  occurred_at=NOW, recorded_at=NOW, is_scanner=True),  # not counted
        )
        monika = "monika-marketing"
        uow.add(
            # web[0]'s click on the ROI calculator moved it to BEW (same transaction)
            StageEntry(lead_id=web[0].id, journey_id=monika, stage="BEW", entered_at=NOW),
            # velocity: fair[1] INF 2 days, BEF 3 days, EVA open; web[3] INF 4 days, skips to EVA
            StageEntry(lead_id=fair[1].id, journey_id="p", stage="INF", entered_at=NOW),
            StageEntry(lead_id=fair[1].id, journey_id="p", stage="BEF", entered_at=NOW + 2 * day),
            StageEntry(lead_id=fair[1].id, journey_id="p", stage="EVA", entered_at=NOW + 5 * day),
            StageEntry(lead_id=web[3].id, journey_id=monika, stage="INF", entered_at=NOW),
            StageEntry(lead_id=web[3].id, journey_id=monika, stage="EVA", entered_at=NOW + 4 * day),
            # web[1] unsubscribes a day after its only journey mail; web[0]'s mail bounced
            ConsentRecord(lead_id=web[1].id, purpose="email_marketing", action="withdrawn",
                          occurred_at=NOW + day),
            ConsentRecord(lead_id=web[1].id, purpose="tracking", action="withdrawn",
                          occurred_at=NOW + day),
            SendDeferral(lead_id=web[0].id, journey_id=monika, step_id="x",
                         reason="quiet_hours", deferred_at=NOW, until=NOW + day),
            SendDeferral(lead_id=web[1].id, journey_id=monika, step_id="x",
                         reason="quiet_hours", deferred_at=NOW, until=NOW + day),
            SendDeferral(lead_id=web[1].id, journey_id="praxisbrief", step_id="z",
                         reason="frequency_cap", deferred_at=NOW, until=NOW + day),
            SignupAttempt(email_hash="a" * 64, at=NOW, refused="no @-sign"),
            SignupAttempt(email_hash="b" * 64, at=NOW),
            Event(lead_id=fair[0].id, type="signup_merged", occurred_at=NOW, recorded_at=NOW),
            # web[1] (accepted) went through first contact and the needs analysis: an SQL;
            # first contact alone is not (web[2] before it was rejected … never got there)
            Event(lead_id=web[1].id, type="sales_stage", data={"stage": "SFC"},
                  occurred_at=NOW, recorded_at=NOW),
            Event(lead_id=web[1].id, type="sales_stage", data={"stage": "BAN"},
                  occurred_at=NOW + day, recorded_at=NOW + day),
            Event(lead_id=fair[0].id, type="sales_stage", data={"stage": "SFC"},
                  occurred_at=NOW, recorded_at=NOW),
        )
        for mail in (_mail(f"journey:{monika}@abc:x:{web[0].id}", "failed", category="nurture"),
                     _mail("journey:other@abc:y:99", "sent", category="nurture"),
                     _mail("doi:x", "suppressed", category="doi",
                           last_error="address suppressed (unsubscribed)")):
            uow.add_mail(mail, body_html="<p>x</p>", body_text="x")
        web[2].recycled_at = NOW + 6 * day
        uow.add(*web, *fair)
        uow.add(_handover(web[2].id, status="open", created_at=NOW + 20 * day))
        uow.commit()


def test_a_funnel_kept_by_another_process_first_is_not_an_error(
        ripen_app: Ripen, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two first views of the funnel page (or one beside the maintenance run) both count and
    keep: the second to commit meets the first's row and shows its own count all the same."""
    _known_history(ripen_app)
    with ripen_app.uow() as uow:
        kept.keep_funnel(uow, ripen_app.clock(), ripen_app.monotonic)
    ripen_app.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    with ripen_app.uow() as late:
        monkeypatch.setattr(late.session, "get", lambda *_, **__: None)  # it looked too early
        shown = kept.keep_funnel(late, ripen_app.clock(), ripen_app.monotonic)
    assert shown.report.total.inquiries == 6
    with ripen_app.uow() as uow:
        first = kept.kept_funnel(uow, ripen_app.clock(), timedelta(minutes=15))
    assert first is not None
    assert first.computed_at == NOW  # the row kept first stays
