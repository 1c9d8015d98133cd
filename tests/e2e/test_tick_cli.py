"""`ripen tick --now` travels in time honestly (issue 18): the whole tick — every step, the
contact policy, the outbox — runs at that time, as a real `ripen` process with Prefect."""

from __future__ import annotations

import mailbox
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from engine.bootstrap import bootstrap
from engine.settings import load_settings
from tests.e2e.test_cli import ripen
from tests.factories import enrollment, lead


def _a_tuesday_morning(after: datetime) -> datetime:
    """09:00 UTC (10:00 in Berlin) on the first Tuesday after ``after`` outside the
    year-end holidays: a time the contact policy lets mail out."""
    day = (after + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    while day.weekday() != 1 or (day.month, day.day) >= (12, 20) or \
            (day.month, day.day) <= (1, 7):
        day += timedelta(days=1)
    return day


@pytest.mark.slow
def test_tick_now_sends_the_recycle_mail_of_a_lead_30_days_into_its_wait(
        tmp_path: Path) -> None:
    """A lead sales sent back waits 30 days for the recycle journey; `ripen tick --now`
    past that sends its mail in one command (it used to say "1 due" and send nothing)."""
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
           "RIPEN_MAIL_URL": f"maildir:{tmp_path / 'outbox'}",
           "RIPEN_SECRET_KEYS": "t" * 40, "PREFECT_HOME": str(tmp_path / "prefect")}
    assert ripen("db", "upgrade", env=env).returncode == 0
    now = datetime.now(UTC)
    app = bootstrap(load_settings(database_url=env["RIPEN_DATABASE_URL"]))
    try:
        journey = app.config.journeys["wiedervorlage"]
        with app.uow() as uow:
            person = lead(email="zurueck@example.com", last_name="Berg",
                          persona_id="monika-marketing", recycled_at=now)
            uow.add(person)
            uow.flush()
            assert person.id is not None
            uow.add(enrollment(person.id, journey_id="wiedervorlage",
                               journey_version=journey.version, stage="EVA",
                               step_id="recycle-proof", due_at=now + timedelta(days=30),
                               stage_entered_at=now, started_at=now))
            uow.commit()
    finally:
        app.dispose()

    at = _a_tuesday_morning(now + timedelta(days=30))
    result = ripen("tick", "--now", at.strftime("%Y-%m-%dT%H:%M:%SZ"), env=env, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"wiedervorlage@{journey.version}: sent 1" in result.stdout
    [mail] = list(mailbox.Maildir(str(tmp_path / "outbox")))
    assert mail["To"] == "zurueck@example.com"
    subject = str(make_header(decode_header(mail["Subject"])))
    assert subject == app.config.content["kundenstimmen"].title


def test_tick_now_is_refused_in_the_past_and_in_production(tmp_path: Path) -> None:
    """Records only move forward in time, and a production database gets no early mail:
    both refused with the reason (exit 1), nothing run."""
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}"}
    past = ripen("tick", "--now", "2020-01-01T09:00:00Z", env=env)
    assert past.returncode == 1
    assert "error: --now 2020-01-01T09:00Z is in the past" in past.stderr
    production = ripen("tick", "--now", "2099-01-06T09:00:00Z",
                       env=env | {"RIPEN_ENV": "production", "RIPEN_SECRET_KEYS": "p" * 40})
    assert production.returncode == 1
    assert "error: --now is refused with RIPEN_ENV=production" in production.stderr
    assert not (tmp_path / "ripen.db").exists()
