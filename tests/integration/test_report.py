"""`ripen report`'s numbers against counts made by hand for a known history."""

from __future__ import annotations

import secrets
from datetime import timedelta

from engine.bootstrap import Ripen
from engine.report import funnel_report
from engine.store.tables import Account, Event, Handover, SentContent
from tests.factories import NOW, lead


def _handover(lead_id: int, **fields: object) -> Handover:
    values: dict[str, object] = {"public_id": secrets.token_urlsafe(8), "lead_id": lead_id,
                                 "reason": "threshold", "created_at": NOW}
    values.update(fields)
    return Handover(**values)  # type: ignore[arg-type]


def test_report_counts_match_a_known_history(ripen_app: Ripen) -> None:
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
        web[2].recycled_at = NOW + 6 * day
        uow.add(*web, *fair)
        uow.add(_handover(web[2].id, status="open", created_at=NOW + 20 * day))
        uow.commit()
    with ripen_app.uow() as uow:
        report = funnel_report(uow, NOW - 30 * day, NOW + 60 * day)
    data = report.as_json()
    assert {k: data["total"][k] for k in ("inquiries", "mql", "sal", "won")} == {
        "inquiries": 6, "mql": 4, "sal": 2, "won": 1}
    assert data["total"]["conversions"] == {"inquiries_to_mql": 4 / 6, "mql_to_sal": 0.5,
                                            "sal_to_won": 0.5}
    assert (data["by_source"]["website"]["mql"], data["by_source"]["trade_fair"]["mql"]) == (
        3, 1)
    assert data["by_campaign"]["herbst"]["inquiries"] == 4
    assert (report.handovers, report.fast_lane, report.answered, report.breaches) == (5, 1, 3, 1)
    assert (report.hours_to_answer_median, report.rejection_reasons) == (96.0,
                                                                        {"not_ready": 1})
    assert (report.recycled, report.recycled_to_mql) == (1, 1)
    assert report.content == {"mm-roi-rechner": {"sends": 2, "clicks": 1, "downloads": 0}}
    assert [row["source"] for row in report.source_ranking] == ["website", "trade_fair"]
    assert report.data_quality == {"confirmed": 6, "missing_job_title": 2,
                                   "missing_company": 2, "missing_industry": 2,
                                   "missing_company_size": 2, "missing_region": 2}
