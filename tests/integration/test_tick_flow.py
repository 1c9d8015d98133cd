"""The Prefect tick flow's wiring, on a real (temporary) Prefect server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from engine import kept
from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import load_and_compile
from engine.config.loader import ConfigPaths
from engine.settings import load_settings
from engine.store import database
from flows import runtime
from flows.tick import run_tick, tick_flow
from tests.factories import NOW, REPO, enrollment, lead


@pytest.fixture
def ripen_app(migrated: Engine, prefect_harness: None, tmp_path: Path) -> Iterator[Ripen]:
    app = Ripen(settings=load_settings(mail_url=f"maildir:{tmp_path / 'outbox'}"),
                config=load_and_compile(ConfigPaths.under(REPO)), db=migrated,
                clock=ManualClock(NOW))
    runtime.use(app)
    try:
        yield app
    finally:
        runtime.use(None)


def test_tick_flow_reports_due_steps_at_the_clocks_time(ripen_app: Ripen) -> None:
    """One flow run finds what is due at the injected time, and more after time travel."""
    version = ripen_app.config.journeys["monika-marketing"].version
    with database.session(ripen_app.db) as db:
        people = [lead(), lead(), lead()]
        db.add_all(people)
        db.commit()
        db.add(enrollment(people[0].id, journey_version=version))  # type: ignore[arg-type]
        for person in people[1:]:
            db.add(enrollment(person.id, journey_version=version,  # type: ignore[arg-type]
                              due_at=NOW + timedelta(days=3)))
        db.commit()
    assert run_tick()["due"] == [{"journey": "monika-marketing", "version": version,
                                  "step": "inf-intro", "due": 1}]
    assert isinstance(ripen_app.clock, ManualClock)
    ripen_app.clock.advance(timedelta(days=3))
    assert run_tick()["due"] == [{"journey": "monika-marketing", "version": version,
                                  "step": "inf-intro", "due": 2}]


def test_tick_flow_carries_the_name_the_prefect_ui_shows() -> None:
    """The flow and its task are named as the operators see them in Prefect."""
    assert tick_flow.name == "ripen-tick"


def test_maintenance_flow_sends_reminders_and_purges(ripen_app: Ripen) -> None:
    """The maintenance flow runs the engine's DOI upkeep through Prefect."""
    from engine.consent import SignUp
    from flows.tick import run_maintenance

    for email in ("old@example.com", "remind@example.com"):
        ripen_app.consent.sign_up(SignUp(email=email, source="website",
                                         consent_version="2026-11"))
        ripen_app.clock.advance(timedelta(days=12))  # type: ignore[attr-defined]
    result = run_maintenance()
    assert result["purged"] == 1      # old@: requested 24 days ago; remind@: 12 days ago
    assert result["reminded"] == 0    # remind@'s link (7 days) has expired: no reminder
    with ripen_app.uow() as uow:
        assert uow.lead_by_email("old@example.com") is None
        assert uow.lead_by_email("remind@example.com") is not None
        # and it keeps the funnel report for the workbench, counted at its (injected) time
        found = kept.kept_funnel(uow, ripen_app.clock(), timedelta(minutes=1))
    assert isinstance(result["funnel_seconds"], float)
    assert found is not None
    assert found.computed_at == ripen_app.clock()
    assert found.report.total.inquiries == 1  # remind@ (old@ was purged before it)


def test_each_journey_with_work_is_a_flow_run_of_its_own_with_counts_and_artifacts(
        ripen_app: Ripen, tmp_path: Path) -> None:
    """A confirmed lead gets its first mail through the tick. Prefect shows the journey as
    flow ``journey:monika-marketing`` with a run named by version and time, tagged by
    journey, persona and kind, the step as a task returning its counts, a table artifact
    keyed by the journey, and the tick's run named after what it did."""
    import asyncio
    import mailbox

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from engine.consent import SignUp
    from engine.tokens import Purpose

    result = ripen_app.consent.sign_up(SignUp(email="flow@example.com", source="website",
                                              consent_version="2026-11",
                                              persona="monika-marketing"))
    ripen_app.send_mail(result.send_now)
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("flow@example.com")
        assert lead is not None
        nonce = lead.doi_nonce
    assert nonce is not None
    token = ripen_app.tokens.dumps(Purpose.DOI, nonce, now=ripen_app.clock())
    ripen_app.consent.confirm(token, ip=None, user_agent=None)
    summary = run_tick()
    subjects = sorted(str(m["Subject"]) for m in mailbox.Maildir(str(tmp_path / "outbox")))
    assert "Leadmanagement in 10 Minuten: vom Kontakt zum Kunden" in subjects

    journey = ripen_app.config.journeys["monika-marketing"]
    key = f"monika-marketing@{journey.version}"
    assert summary["journeys"][key]["counts"] == {"sent": 1}

    async def read() -> tuple[Any, Any, Any, Any]:
        async with get_client() as client:
            tasks = await client.read_task_runs()
            flows = {f.id: f.name for f in await client.read_flows()}
            runs = await client.read_flow_runs()
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["journey-monika-marketing", "ripen-tick"])))
        return tasks, flows, runs, artifacts

    tasks, flows, flow_runs, artifacts = asyncio.run(read())

    def newest(found: list[Any]) -> Any:  # the session's Prefect server keeps older tests'
        return max(found, key=lambda r: r.created)

    step = newest([t for t in tasks if t.name == f"{journey.name} INF:inf-intro"])
    assert step.state is not None
    assert step.state.is_completed()
    run = newest([r for r in flow_runs if flows[r.flow_id] == "journey:monika-marketing"])
    assert run.name == f"{key} · 2026-11-23 09:00"
    assert set(run.tags) == {"journey:monika-marketing", "persona:monika-marketing",
                             "kind:nurture"}
    assert step.flow_run_id == run.id
    assert step.tags == []  # no tags on task runs: each would cost a concurrency call
    tick = newest([r for r in flow_runs if flows[r.flow_id] == "ripen-tick"])
    assert tick.name == "tick · 2026-11-23 09:00 · 1 journey · 1 sent"
    table = newest([a for a in artifacts if a.key == "journey-monika-marketing"])
    assert table.type == "table"
    [row] = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert (row["step"], row["stage"], row["due"], row["sent"]) == ("inf-intro", "INF", 1, 1)
    markdown = newest([a for a in artifacts if a.key == "ripen-tick"])
    assert f"| {key} | 1 | 0 | 0 | 0 | 0 | ok |" in markdown.data
