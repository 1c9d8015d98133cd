"""The Prefect tick flow's wiring, on a real (temporary) Prefect server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

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
    with database.session(ripen_app.db) as db:
        people = [lead(), lead()]
        db.add_all(people)
        db.commit()
        db.add(enrollment(people[0].id))  # type: ignore[arg-type]
        db.add(enrollment(people[1].id, due_at=NOW + timedelta(days=3)))  # type: ignore[arg-type]
        db.commit()
    assert run_tick() == [{"journey": "monika-marketing", "version": "df64ac446936",
                           "step": "inf-intro", "due": 1}]
    assert isinstance(ripen_app.clock, ManualClock)
    ripen_app.clock.advance(timedelta(days=3))
    assert run_tick() == [{"journey": "monika-marketing", "version": "df64ac446936",
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


def test_the_tick_runs_each_journeys_steps_as_tasks_named_by_the_journey(
        ripen_app: Ripen, tmp_path: Path) -> None:
    """A confirmed lead gets its first mail through the tick; Prefect shows the step's task
    under the journey's name, in the tick's flow run (no subflow per journey)."""
    import asyncio
    import mailbox

    from prefect.client.orchestration import get_client

    from engine.consent import SignUp

    result = ripen_app.consent.sign_up(SignUp(email="flow@example.com", source="website",
                                              consent_version="2026-11",
                                              persona="monika-marketing"))
    ripen_app.send_mail(result.send_now)
    with ripen_app.uow() as uow:
        lead = uow.lead_by_email("flow@example.com")
        assert lead is not None
        nonce = lead.doi_nonce
    from engine.tokens import Purpose

    assert nonce is not None
    token = ripen_app.tokens.dumps(Purpose.DOI, nonce, now=ripen_app.clock())
    ripen_app.consent.confirm(token, ip=None, user_agent=None)
    run_tick()
    subjects = sorted(str(m["Subject"]) for m in mailbox.Maildir(str(tmp_path / "outbox")))
    assert "Leadmanagement in 10 Minuten: vom Kontakt zum Kunden" in subjects

    journey = ripen_app.config.journeys["monika-marketing"]
    name = f"journey:monika-marketing@{journey.version}"

    async def runs() -> tuple[set[str], set[str]]:
        async with get_client() as client:
            tasks = {t.name for t in await client.read_task_runs()}
            flows = {f.name for f in await client.read_flows()}
        return tasks, flows

    tasks, flows = asyncio.run(runs())
    assert f"{name} INF:inf-intro" in tasks
    assert f"{name} slowest-case" in tasks
    assert name not in flows
