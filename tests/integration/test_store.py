"""The store on a real SQLite file and (in CI) a real PostgreSQL database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import SQLModel, select

from engine.store import database
from engine.store.enrollments import DueStep, due_steps
from engine.store.tables import TABLES, Lead, MailOutbox
from engine.store.uow import UnitOfWork
from tests.factories import NOW, enrollment, lead


def test_migrations_create_every_table(migrated: Engine) -> None:
    """`ripen db upgrade` creates all tables of the model at the head revision."""
    names = set(inspect(migrated).get_table_names())
    assert {table.__tablename__ for table in TABLES} <= names
    assert database.current_revision(migrated) == database.head_revision()


def test_migrations_match_the_models(migrated: Engine) -> None:
    """No drift: the migrated schema is exactly what the SQLModel tables declare."""
    with migrated.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_migrations_go_down_and_up_again(migrated: Engine) -> None:
    """Every migration can be undone and re-applied."""
    database.downgrade(migrated, "base")
    assert database.current_revision(migrated) is None
    assert "lead" not in inspect(migrated).get_table_names()
    database.upgrade(migrated)
    assert database.current_revision(migrated) == database.head_revision()


def test_times_come_back_aware_in_utc(migrated: Engine) -> None:
    """A time stored in any zone is read back as the same instant, in UTC."""
    berlin = timezone(timedelta(hours=1))
    with database.session(migrated) as db:
        db.add(lead(email="zeit@example.com", created_at=datetime(2026, 11, 23, 10, 0,
                                                                   tzinfo=berlin)))
        db.commit()
    with database.session(migrated) as db:
        [stored] = db.exec(select(Lead)).all()
    assert stored.created_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert stored.created_at.tzinfo is UTC


def test_naive_times_are_refused(migrated: Engine) -> None:
    """A naive datetime is a bug; it is refused instead of meaning "some local time"."""
    with database.session(migrated) as db:
        db.add(lead(created_at=datetime(2026, 11, 23, 10, 0)))
        with pytest.raises(StatementError, match="naive datetime"):
            db.commit()


def test_email_is_unique(migrated: Engine) -> None:
    """One lead per normalised address."""
    with database.session(migrated) as db:
        db.add(lead(email="same@example.com"))
        db.commit()
        db.add(lead(email="same@example.com"))
        with pytest.raises(IntegrityError):
            db.commit()


def test_one_active_enrollment_per_lead_and_journey(migrated: Engine) -> None:
    """A second active enrollment in the same journey is refused; ended ones may repeat."""
    with database.session(migrated) as db:
        person = lead()
        db.add(person)
        db.commit()
        assert person.id is not None
        db.add(enrollment(person.id, status="exited"))
        db.add(enrollment(person.id, status="exited"))
        db.add(enrollment(person.id))
        db.commit()
        db.add(enrollment(person.id))
        with pytest.raises(IntegrityError):
            db.commit()


def test_due_steps_counts_only_active_and_due(migrated: Engine) -> None:
    """The tick's query: active enrollments due at `now`, grouped by journey and step."""
    with database.session(migrated) as db:
        people = [lead() for _ in range(5)]
        db.add_all(people)
        db.commit()
        ids = [p.id for p in people]
        assert all(ids)
        db.add_all([
            enrollment(ids[0]),                                        # due
            enrollment(ids[1], due_at=NOW - timedelta(days=1)),        # overdue
            enrollment(ids[2], step_id="inf-second"),                  # due, other step
            enrollment(ids[3], due_at=NOW + timedelta(seconds=1)),     # not yet
            enrollment(ids[4], status="paused"),                       # paused (MQL)
        ])
        db.commit()
        found = due_steps(db, now=NOW)
    assert found == [
        DueStep("monika-marketing", "df64ac446936", "inf-intro", 2),
        DueStep("monika-marketing", "df64ac446936", "inf-second", 1),
    ]


def test_the_mail_body_migration_keeps_every_body_both_ways(migrated: Engine) -> None:
    """0014 moves the outbox's bodies to mail_body (a purged, empty one stays gone) and
    back on downgrade; erasing an outbox row takes its body with it."""
    database.downgrade(migrated, "0013")
    rows = [("a", "<p>Grüße</p>", "Grüße"), ("b", "", ""), ("c", "<p>x</p>", "x")]
    with migrated.begin() as connection:
        for key, html, body in rows:
            connection.execute(text(
                "INSERT INTO mail_outbox (idempotency_key, kind, category, subject, message_id,"
                " body_html, body_text, headers, status, attempts, created_at) VALUES (:key,"
                " 'marketing', 'nurture', 's', :mid, :html, :text, '{}', 'sent', 0, :at)"),
                {"key": key, "mid": f"<{key}@x>", "html": html, "text": body,
                 "at": NOW.replace(tzinfo=None)})
    database.upgrade(migrated)
    with migrated.connect() as connection:
        moved = connection.execute(text(
            "SELECT message_id, body_html, body_text FROM mail_body ORDER BY message_id")).all()
    assert [tuple(r) for r in moved] == [("<a@x>", "<p>Grüße</p>", "Grüße"),
                                         ("<c@x>", "<p>x</p>", "x")]
    with migrated.begin() as connection:
        connection.execute(text("DELETE FROM mail_outbox WHERE message_id = '<c@x>'"))
    with migrated.connect() as connection:
        assert connection.execute(text("SELECT message_id FROM mail_body")).scalars().all() \
            == ["<a@x>"]
    database.downgrade(migrated, "0013")
    with migrated.connect() as connection:
        back = connection.execute(text(
            "SELECT idempotency_key, body_html, body_text FROM mail_outbox"
            " ORDER BY idempotency_key")).all()
    assert [tuple(r) for r in back] == [("a", "<p>Grüße</p>", "Grüße"), ("b", "", "")]


def test_a_new_outbox_row_cannot_be_added_without_its_body(migrated: Engine) -> None:
    """An outbox row built as an object goes in with its body (add_mail); add() refuses a
    new one, so that no mail is queued that could only fail when sent."""
    row = MailOutbox(idempotency_key="k", kind="marketing", subject="s", message_id="<k@x>",
                     created_at=NOW)
    with UnitOfWork(migrated) as uow:
        with pytest.raises(TypeError, match="add_mail"):
            uow.add(row)
        uow.add_mail(row, body_html="<p>x</p>", body_text="x")
        uow.commit()
        assert row.id is not None
        body = uow.mail_body(row.message_id)
        assert body is not None
        assert body.body_text == "x"
        uow.add(row)  # a stored one may be added again (to save a change)
