"""/metrics (issue 21): scraped with prometheus-client's own parser while a real tick (the
Prefect flow) sends mail to aiosmtpd, and after it — SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from engine.bootstrap import Ripen
from flows import runtime
from flows.tick import run_tick
from tests.conftest import API_KEY, SmtpSink
from tests.consent_helpers import client
from tests.factories import enrollment, saved_leads

Smtp = tuple[SmtpSink, int]
KEY = {"authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def app(ripen_app: Ripen, prefect_harness: None) -> Iterator[Ripen]:
    runtime.use(ripen_app)
    try:
        yield ripen_app
    finally:
        runtime.use(None)


def _scrape(app: Ripen) -> dict[str, list[Any]]:
    response = client(app).get("/metrics", headers=KEY)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples
            for family in text_string_to_metric_families(response.text)}


def _value(samples: list[Any], **labels: str) -> float:
    [sample] = [s for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    return float(sample.value)


def test_metrics_during_and_after_a_tick_with_real_mail(app: Ripen, smtp: Smtp,
                                                        migrated: Engine) -> None:
    """Before: 300 leads due; during the tick every scrape parses; after: 300 sent, none
    due, none waiting, the last tick's age and duration, no quarantine. Without the key:
    401."""
    sink, _ = smtp
    journey = app.config.journeys["monika-marketing"]
    leads = saved_leads(migrated, 300, prefix="m", last_name="Muster",
                        persona_id="monika-marketing")
    with app.uow() as uow:
        uow.add(*[enrollment(i, journey_version=journey.version, due_at=app.clock())
                  for i in leads])
        uow.commit()
    before = _scrape(app)
    assert _value(before["ripen_enrollments_due"]) == 300
    assert _value(before["ripen_leads"], status="confirmed", stage="INF") == 300

    during: list[dict[str, list[Any]]] = []
    tick = threading.Thread(target=run_tick)
    tick.start()
    while tick.is_alive():
        during.append(_scrape(app))
        time.sleep(0.05)
    tick.join()
    after = _scrape(app)

    assert during, "the tick was scraped while it ran"
    assert len(sink.messages) == 300
    assert _value(after["ripen_outbox_mails"], status="sent") == 300
    assert _value(after["ripen_enrollments_due"]) == 0
    assert _value(after["ripen_outbox_oldest_waiting_seconds"]) == 0
    assert after["ripen_quarantined_leads"] == []
    assert _value(after["ripen_last_tick_failed"]) == 0
    assert _value(after["ripen_last_tick_duration_seconds"]) >= 0
    assert _value(after["ripen_last_tick_age_seconds"]) >= 0
    assert client(app).get("/metrics").status_code == 401
