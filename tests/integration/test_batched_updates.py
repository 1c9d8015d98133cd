"""Changed rows are written in batches (engine.store.batched), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import select

from engine.events import NewEvent
from engine.store.tables import Account, Event, Lead
from engine.store.uow import UnitOfWork
from tests.factories import NOW, saved_leads


@contextmanager
def statements(engine: Engine) -> Iterator[list[tuple[str, int]]]:
    """The UPDATE statements sent to the database, with how many rows each carried."""
    seen: list[tuple[str, int]] = []

    def record(conn: object, cursor: object, sql: str, params: object, context: object,
               executemany: bool) -> None:
        if sql.lstrip().upper().startswith("UPDATE"):
            seen.append((sql, len(params) if executemany else 1))  # type: ignore[arg-type]

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)




def test_changed_rows_go_out_in_one_statement_per_set_of_columns(migrated: Engine) -> None:
    """Thirty leads changed in three different ways (interleaved) cost three UPDATEs, and a
    new unit of work reads every value back."""
    ids = saved_leads(migrated, 30, prefix="batch")
    with statements(migrated) as seen, UnitOfWork(migrated) as uow:
        loaded = uow.leads_by_id(ids)
        for n, lead_id in enumerate(ids):
            row = loaded[lead_id]
            if n % 3 == 0:
                row.funnel_stage = "BEF"
            elif n % 3 == 1:
                row.implicit_points, row.implicit_points_at = float(n), NOW
            else:
                row.funnel_stage, row.qualify_at = "EVA", NOW + timedelta(minutes=n)
            uow.add(row)
        uow.commit()
    assert sorted(rows for _, rows in seen) == [10, 10, 10]
    with UnitOfWork(migrated) as uow:
        again = uow.leads_by_id(ids)
    for n, lead_id in enumerate(ids):
        row = again[lead_id]
        if n % 3 == 0:
            assert (row.funnel_stage, row.implicit_points) == ("BEF", None)
        elif n % 3 == 1:
            assert (row.implicit_points, row.implicit_points_at) == (float(n), NOW)
        else:
            assert (row.funnel_stage, row.qualify_at) == ("EVA", NOW + timedelta(minutes=n))


def test_a_value_set_back_to_what_it_was_writes_nothing(migrated: Engine) -> None:
    """A change undone before the flush sends no UPDATE."""
    [lead_id] = saved_leads(migrated, 1, prefix="batch")
    with statements(migrated) as seen, UnitOfWork(migrated) as uow:
        row = uow.leads_by_id([lead_id])[lead_id]
        before = row.funnel_stage
        row.funnel_stage = "BEW"
        row.funnel_stage = before
        uow.commit()
    assert seen == []


def test_a_foreign_key_to_a_row_of_the_same_flush_is_left_to_the_orm(migrated: Engine) -> None:
    """A lead pointed at an account that the same flush inserts: the ORM writes the account
    first (the key is checked at once), and the lead's other change goes with it."""
    [lead_id] = saved_leads(migrated, 1, prefix="batch")
    with UnitOfWork(migrated) as uow:
        row = uow.leads_by_id([lead_id])[lead_id]
        uow.add(Account(id=77, name="Neu GmbH", created_at=NOW))
        row.account_id, row.funnel_stage = 77, "EVA"
        uow.commit()
    with UnitOfWork(migrated) as uow:
        stored = uow.leads_by_id([lead_id])[lead_id]
        account = uow.session.get(Account, 77)
    assert (stored.account_id, stored.funnel_stage) == (77, "EVA")
    assert account is not None


def test_a_row_deleted_underneath_fails_the_whole_unit_of_work(migrated: Engine) -> None:
    """A changed row that is gone by the flush raises; nothing of the batch commits."""
    ids = saved_leads(migrated, 2, prefix="batch")
    with UnitOfWork(migrated) as uow:
        rows = uow.leads_by_id(ids)
        uow.session.connection().execute(text("DELETE FROM lead WHERE id = :id"),
                                         {"id": ids[1]})
        for row in rows.values():
            row.funnel_stage = "BEF"
        with pytest.raises(StaleDataError, match="Lead: 2 rows to update, 1 found"):
            uow.commit()
    with UnitOfWork(migrated) as uow:
        stored = uow.session.exec(select(Lead).order_by(Lead.id)).all()  # type: ignore[arg-type]
    assert [(r.id, r.funnel_stage) for r in stored] == [(ids[0], "INF"), (ids[1], "INF")]


def test_batch_ingestion_returns_each_events_own_row_id(ripen_app: object) -> None:
    """Recorded ids point at the rows of those very events (SQLite numbers them by the last
    row id of one executemany; PostgreSQL takes them from its sequence)."""
    from engine.bootstrap import Ripen

    app: Ripen = ripen_app  # type: ignore[assignment]
    ids = saved_leads(app.db, 3, prefix="batch")
    first = app.journeys.record_events([NewEvent(lead_id=ids[0], type="visit",
                                                 idempotency_key="before")])
    batch = [NewEvent(lead_id=ids[n % 3], type=("visit", "click", "download")[n % 3],
                      idempotency_key=f"key-{n}") for n in range(7)]
    batch.insert(3, NewEvent(lead_id=ids[1], type="visit", idempotency_key="before"))
    recorded = app.journeys.record_events(batch)
    assert recorded[3] is None  # the repeated key
    with UnitOfWork(app.db) as uow:
        for new, done in zip(batch, recorded, strict=True):
            if done is None:
                continue
            stored = uow.session.get(Event, done.event_id)
            assert stored is not None
            assert (stored.lead_id, stored.type, stored.idempotency_key) == \
                (new.lead_id, new.type, new.idempotency_key)
    assert first[0] is not None
    assert sorted(d.event_id for d in recorded if d) == \
        list(range(first[0].event_id + 1, first[0].event_id + 8))


def test_ingestion_plans_for_its_values_only_in_its_own_transaction(migrated: Engine) -> None:
    """On PostgreSQL a unit of work that asks for it plans its statements for their values
    (force_custom_plan); the next transaction on the same connection is back to the
    default. SQLite has no plan cache: nothing to set."""
    with UnitOfWork(migrated) as uow:
        uow.plan_for_values()
        inside = uow.session.connection().exec_driver_sql(
            "SHOW plan_cache_mode").scalar() if uow.postgres else None
        uow.commit()
        after = uow.session.connection().exec_driver_sql(
            "SHOW plan_cache_mode").scalar() if uow.postgres else None
    if migrated.dialect.name == "postgresql":
        assert (inside, after) == ("force_custom_plan", "auto")
    else:
        assert (inside, after) == (None, None)
