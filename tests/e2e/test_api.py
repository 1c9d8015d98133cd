"""The HTTP API's operations endpoints."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from engine.store import database
from engine.store.uow import UnitOfWork
from ripen.api.app import SchedulerStatus, create_app
from tests.factories import NOW, REPO


def _app(db: Engine, status: SchedulerStatus | None = None) -> TestClient:
    ripen = Ripen(settings=load_settings(), config=load_and_compile(ConfigPaths.under(REPO)),
                  db=db, clock=ManualClock(NOW))
    return TestClient(create_app(ripen, status))


def test_health_reports_database_schema_config_and_scheduler(migrated: Engine) -> None:
    """/health answers 200 with the schema revision, config version and last tick."""
    status = SchedulerStatus(running=True, last_tick_at=NOW)
    response = _app(migrated, status).get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["schema"] == database.head_revision()
    assert body["scheduler"] == {"mode": "embedded", "running": True,
                                 "last_tick_at": "2026-11-23T09:00:00+00:00",
                                 "last_tick_error": None}
    assert set(body["journeys"]) >= {"monika-marketing", "praxisbrief"}


def test_health_is_503_when_the_database_is_unreachable() -> None:
    """A dead database makes /health fail (for load balancers), without a traceback."""
    dead = database.make_engine("postgresql://nobody@127.0.0.1:9/none",
                                connect_args={"connect_timeout": 2})
    response = _app(dead).get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert "Traceback" not in response.text


def test_health_warns_while_links_are_signed_with_a_generated_key(migrated: Engine,
                                                                  tmp_path: Path) -> None:
    """Without RIPEN_SECRET_KEYS /health names the generated key and says what to set; with
    keys it is quiet."""
    ripen = Ripen(settings=load_settings(home=tmp_path),
                  config=load_and_compile(ConfigPaths.under(REPO)), db=migrated,
                  clock=ManualClock(NOW))
    body = TestClient(create_app(ripen)).get("/health").json()
    assert body["signing_keys"] == "generated"
    [warning] = body["warnings"]
    assert warning.startswith("RIPEN_SECRET_KEYS is not set: links in mails are signed with a "
                              "key generated for this installation")
    assert (tmp_path / "var" / "secret-key").exists()
    keyed = Ripen(settings=load_settings(secret_keys=["k" * 40]), config=ripen.config,
                  db=migrated, clock=ManualClock(NOW))
    body = TestClient(create_app(keyed)).get("/health").json()
    assert body["signing_keys"] == "RIPEN_SECRET_KEYS"
    assert "warnings" not in body


def test_health_is_degraded_and_not_ready_while_ticks_fail_stall_or_leads_wait(
        migrated: Engine) -> None:
    """/health names each problem (the last tick failed, no tick for three intervals,
    quarantined leads) with status degraded; /health/ready is 503 then, /health/live 200."""
    from engine import runs
    from engine.store.tables import Enrollment, Lead

    web = _app(migrated)
    assert web.get("/health").json()["status"] == "ok"  # just started: nothing to say yet
    assert web.get("/health/ready").status_code == 200
    record = runs.started(lambda: UnitOfWork(migrated), "tick", NOW - timedelta(minutes=4))
    runs.finished(lambda: UnitOfWork(migrated), record, NOW - timedelta(minutes=4),
                  status="failed", summary={}, error="journey x@1: boom")
    with UnitOfWork(migrated) as work:
        lead = Lead(public_id="q1", email="q@example.com", status="confirmed",
                    created_at=NOW, updated_at=NOW)
        work.add(lead)
        work.flush()
        work.add(Enrollment(lead_id=lead.id, journey_id="monika-marketing",
                            journey_version="v1", stage="INF", step_id="inf-intro",
                            status="quarantined", quarantined_at=NOW,
                            quarantine_reason="step inf-intro: TypeError: x",
                            stage_entered_at=NOW, started_at=NOW))
        work.commit()
    body = web.get("/health").json()
    assert body["status"] == "degraded"
    assert body["problems"] == [
        "the last tick failed: journey x@1: boom",
        "no tick for 4 min (ticks every 60 s)",
        "1 leads quarantined (monika-marketing 1): ripen leads quarantined"]
    assert body["quarantined"] == {"monika-marketing": 1}
    ready = web.get("/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (503, "degraded")
    assert web.get("/health/live").status_code == 200


def test_the_openapi_description_declares_the_api_key_and_its_answers(
        migrated: Engine) -> None:
    """/docs can try the API with a key: a bearer security scheme, on every operation behind
    the key (and on no public page), each documenting 401 and 413 with its error body."""
    spec = _app(migrated).get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer",
        "description": "an entry of RIPEN_API_KEYS: `Authorization: Bearer <key>`"}
    secured, public = set(), set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            (secured if operation.get("security") else public).add(f"{method.upper()} {path}")
            if operation.get("security"):
                assert operation["security"] == [{"apiKey": []}]
                assert {"401", "413"} <= set(operation["responses"]), path
    assert {p for p in secured if not p.split(" ")[1].startswith(("/api/", "/reports/",
                                                                   "/metrics"))} == set()
    assert {p for p in public if p.split(" ")[1].startswith(("/api/", "/reports/",
                                                              "/metrics"))} == set()
    leads = spec["paths"]["/api/leads"]["post"]["responses"]
    assert set(leads) >= {"202", "401", "409", "413", "422", "429"}
