"""The Prefect tick flow's wiring, on a real (temporary) Prefect server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

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
def ripen_app(migrated: Engine, prefect_harness: None) -> Iterator[Ripen]:
    app = Ripen(settings=load_settings(), config=load_and_compile(ConfigPaths.under(REPO)),
                db=migrated, clock=ManualClock(NOW))
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
