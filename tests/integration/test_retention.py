"""Retention (issue 19): the maintenance flow, on a Prefect server and a virtual clock,
purges each class of config/retention.yaml after its period — and nothing younger — and
says how many in its run's summary and artifact."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy.engine import Engine
from sqlmodel import select

from engine import runs
from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from engine.store.tables import (
    ConsentRecord,
    Event,
    Lead,
    MailOutbox,
    RunRecord,
    ScoreEntry,
    SignInFailure,
    TrackedLink,
    WebhookDelivery,
)
from flows import runtime
from flows.tick import run_maintenance
from tests.factories import NOW, REPO, lead

DAY = timedelta(days=1)


@pytest.fixture
def app(migrated: Engine, prefect_harness: None, tmp_path: Path) -> Iterator[Ripen]:
    ripen = Ripen(settings=load_settings(mail_url=f"maildir:{tmp_path / 'outbox'}",
                                         secret_keys=["k" * 40]),
                  config=load_and_compile(ConfigPaths.under(REPO)), db=migrated,
                  clock=ManualClock(NOW))
    runtime.use(ripen)
    try:
        yield ripen
    finally:
        runtime.use(None)


def _rows(app: Ripen, age: timedelta, name: str) -> None:
    """One row of every class, ``age`` old."""
    at = NOW - age
    with app.uow() as uow:
        person = lead(email=f"{name}@example.com", created_at=at)
        erased = lead(email=None, status="erased", updated_at=at, created_at=at)
        uow.add(person, erased)
        uow.flush()
        assert person.id is not None
        assert erased.id is not None
        event = Event(lead_id=person.id, type="click", data={"ip": "192.0.2.1"},
                      occurred_at=at, recorded_at=at)
        uow.add(event)
        uow.flush()
        uow.add(ScoreEntry(lead_id=person.id, kind="implicit", rule_id="click",
                           config_version="v", delta=5, event_id=event.id, created_at=at),
                TrackedLink(token_id=f"{name}-link", lead_id=person.id, kind="content",
                            url="https://example.com/a", created_at=at),
                WebhookDelivery(webhook_id=f"msg_{name}_ok", endpoint_id="crm",
                                event_type="handover.created", payload="{}",
                                status="delivered", created_at=at, delivered_at=at),
                WebhookDelivery(webhook_id=f"msg_{name}_dead", endpoint_id="crm",
                                event_type="handover.created", payload="{}", status="dead",
                                created_at=at),
                ConsentRecord(lead_id=erased.id, purpose="email_marketing", action="confirmed",
                              occurred_at=at),
                RunRecord(kind="tick", started_at=at, status="ok", summary={}))
        uow.add_mail(MailOutbox(idempotency_key=f"{name}:mail", lead_id=person.id,
                                kind="marketing", to_address=person.email, subject="s",
                                message_id=f"<{name}@x>", status="sent", created_at=at,
                                sent_at=at),
                     body_html="<p>Hallo</p>", body_text="Hallo")
        uow.commit()


def test_maintenance_purges_each_class_after_its_period(app: Ripen) -> None:
    """Rows a day past their period go; rows a day younger stay; the counts per class are
    in the maintenance run's summary, record and artifact; the ledger keeps its points."""
    retention = app.config.retention
    periods = {"mail_bodies": retention.mail_bodies, "click_links": retention.click_links,
               "events": retention.events, "delivered_webhooks": retention.delivered_webhooks,
               "dead_webhooks": retention.dead_webhooks,
               "erased_consent_proof": retention.erased_consent_proof,
               "run_records": retention.run_records}
    longest = max(periods.values())
    _rows(app, longest + DAY, "old")       # past every period
    _rows(app, DAY, "young")               # within every period
    with app.uow() as uow:  # failed workbench sign-ins: kept for the lockout's 15 minutes
        uow.add(SignInFailure(ip="192.0.2.7", at=NOW - timedelta(minutes=16)),
                SignInFailure(ip="192.0.2.8", at=NOW - timedelta(minutes=14)))
        uow.commit()

    summary = run_maintenance()

    assert summary["retention"] == {**dict.fromkeys(periods, 1), "sign_in_failures": 1}
    with app.uow() as uow:
        assert [f.ip for f in uow.session.exec(select(SignInFailure))] == ["192.0.2.8"]
    with app.uow() as uow:
        bodies = {m.idempotency_key: uow.mail_body(m.message_id)
                  for m in uow.session.exec(select(MailOutbox))}
        assert [key for key, body in bodies.items() if body is None] == ["old:mail"]
        young = bodies["young:mail"]
        assert young is not None
        assert young.body_text == "Hallo"
        assert [t.token_id for t in uow.session.exec(select(TrackedLink))] == ["young-link"]
        assert len(uow.session.exec(select(Event)).all()) == 1
        assert sorted(e.event_id is None for e in uow.session.exec(select(ScoreEntry))) == [
            False, True]  # the ledger keeps the old points, without their event
        assert sorted(w.webhook_id for w in uow.session.exec(select(WebhookDelivery))) == [
            "msg_young_dead", "msg_young_ok"]
        assert len(uow.session.exec(select(ConsentRecord)).all()) == 1
        assert len(uow.session.exec(select(Lead)).all()) == 4  # the leads stay
    last = runs.last(app.uow, "maintenance")
    assert last is not None
    assert last.summary["retention"] == summary["retention"]

    async def artifact() -> str:
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["ripen-maintenance"])))
        return str(max(found, key=lambda a: a.created).data)

    assert "| click_links | 1 |" in asyncio.run(artifact())


def test_validate_refuses_a_period_too_short(tmp_path: Path) -> None:
    """`ripen validate` checks the periods: a click link kept 7 days is refused, with why."""
    from engine.errors import ConfigError
    from tests.factories import config_tree

    root = config_tree(tmp_path / "cfg")
    (root / "config" / "retention.yaml").write_text("click_links: 7d\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_and_compile(ConfigPaths.under(root))
    assert caught.value.format() == (
        "config/retention.yaml:1:14: click_links: shorter than 30 days: the links in a mail "
        "must work for at least a month\n  hint: keep it at least 30d")
