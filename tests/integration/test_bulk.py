"""Set-based writes (``engine.store.bulk``) store exactly what the ORM would, on SQLite and
PostgreSQL: aware datetimes, JSON, booleans, NULLs and column defaults."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from engine.store import bulk
from engine.store.tables import Lead, MailOutbox
from engine.store.uow import UnitOfWork
from tests.factories import NOW, saved_leads


def test_inserted_rows_read_back_as_the_orm_writes_them(migrated: Engine) -> None:
    """Rows written in one statement come back through the ORM with every value intact
    (the datetime as an aware UTC value, the JSON as written) and defaults filled in;
    nothing is written unless the transaction commits."""
    [lead_id] = saved_leads(migrated, 1, prefix="bulk")
    later = NOW + timedelta(hours=3, microseconds=17)
    rows = [{"idempotency_key": f"bulk:{n}", "lead_id": lead_id if n else None,
             "kind": "marketing", "to_address": f"x{n}@example.com", "subject": "Grüße",
             "message_id": f"<b{n}@example.com>",
             "headers": {"List-Unsubscribe": f"<https://x/u/{n}>"},
             "created_at": NOW if n % 2 else later} for n in range(3)]
    with Session(migrated) as session:
        bulk.insert(session, MailOutbox, rows)
        session.rollback()
    with Session(migrated) as session:
        assert session.exec(select(MailOutbox)).all() == []
        bulk.insert(session, MailOutbox, rows)
        session.commit()
        stored = session.exec(select(MailOutbox).order_by(col(MailOutbox.id))).all()
    assert [(r.idempotency_key, r.lead_id, r.subject, r.headers, r.created_at) for r in stored] \
        == [(f"bulk:{n}", lead_id if n else None, "Grüße",
             {"List-Unsubscribe": f"<https://x/u/{n}>"}, NOW if n % 2 else later)
            for n in range(3)]
    assert all(r.created_at.tzinfo is not None for r in stored)
    assert {(r.status, r.category, r.attempts) for r in stored} == {("pending", "nurture", 0)}


def test_updates_match_their_columns_and_count_the_rows_changed(migrated: Engine) -> None:
    """Each row changes only where all its match columns agree; the count says how many
    did (the sender learns from it which DATA marks it still owned)."""
    ids = saved_leads(migrated, 3, prefix="bulk")
    with Session(migrated) as session:
        changed = bulk.update(session, Lead, [
            {"id": ids[0], "status": "confirmed", "mail_paused_until": NOW,
             "tracking_consent": True},
            {"id": ids[1], "status": "unsubscribed", "mail_paused_until": None,
             "tracking_consent": False}])
        missed = bulk.update(session, Lead, [
            {"id": ids[2], "email": "bulk9@example.com", "status": "pending"},
            {"id": ids[1], "email": "nobody@example.com", "status": "pending"}],
            match=("id", "email"))
        session.commit()
        found = {p.id: p for p in session.exec(select(Lead)).all()}
    assert (changed, missed) == (2, 0)
    assert (found[ids[0]].status, found[ids[0]].mail_paused_until,
            found[ids[0]].tracking_consent) == ("confirmed", NOW, True)
    assert (found[ids[1]].status, found[ids[1]].mail_paused_until,
            found[ids[1]].tracking_consent) == ("unsubscribed", None, False)
    assert found[ids[2]].status == "confirmed"  # untouched: its email did not match
    assert found[ids[1]].email == "bulk1@example.com"


def test_a_batch_lookup_is_one_array_parameter_on_postgresql(migrated: Engine) -> None:
    """Looking up a batch by id is one statement: `= ANY(array)` with a single parameter on
    PostgreSQL (the same statement for any batch, whose prepared plan keeps the index), an
    IN list on SQLite; unknown ids are simply not found."""
    ids = saved_leads(migrated, 5, prefix="among")
    seen: list[tuple[str, object]] = []

    def record(conn: object, cursor: object, sql: str, params: object, context: object,
               executemany: bool) -> None:
        if "FROM lead" in sql:
            seen.append((sql, params))

    event.listen(migrated, "before_cursor_execute", record)
    try:
        with UnitOfWork(migrated) as uow:
            found = uow.leads_by_id([*ids, 10_000_000])
    finally:
        event.remove(migrated, "before_cursor_execute", record)
    [(sql, params)] = seen
    assert sorted(found) == ids
    if migrated.dialect.name == "postgresql":
        assert "= ANY (" in sql or "= ANY(" in sql, sql
        assert isinstance(params, dict)
        assert len(params) == 1
        assert sorted(next(iter(params.values()))) == [*ids, 10_000_000]
    else:
        assert " IN (" in sql, sql
        assert len(params) == 6  # type: ignore[arg-type]
