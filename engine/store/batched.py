"""Changed rows written in batches: one statement per table and set of changed columns.

SQLAlchemy's flush writes one ``UPDATE`` per changed row unless *consecutive* rows change
the same columns, and rows of a batch rarely do (one lead's score moved, the next one's
stage too). An event batch changes hundreds of leads and enrollments, so before each flush
the changed rows are grouped by table and changed columns and each group is written by one
``executemany`` (``engine.store.bulk``); their history is then cleared, so the flush itself
has nothing left to do for them.

A row is left to the ORM's own flush when one of its changes is not a plain column, is a
foreign key (the ORM orders it after the insert of the row it points at), or clears a
loaded value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import InstanceState, Mapper, UOWTransaction
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from engine.store import bulk


def install(session: Session) -> None:
    """Batch the session's updates from now on (each unit of work's session)."""
    event.listen(session, "before_flush", _before_flush)


def _plain_columns(mapper: Mapper[Any]) -> frozenset[str] | None:
    """The mapper's columns an update may batch (None: a table batching leaves alone)."""
    found = _PLAIN.get(mapper)
    if found is None and mapper not in _PLAIN:
        table = mapper.local_table
        simple = (mapper.version_id_col is None and not mapper.relationships
                  and [c.name for c in mapper.primary_key] == ["id"])
        found = frozenset(c.key for c in mapper.column_attrs
                          if len(c.columns) == 1 and c.columns[0].table is table
                          and not c.columns[0].foreign_keys
                          and not c.columns[0].primary_key) if simple else None
        _PLAIN[mapper] = found
    return found


_PLAIN: dict[Mapper[Any], frozenset[str] | None] = {}


def _changes(state: InstanceState[Any], plain: frozenset[str]) -> dict[str, Any] | None:
    """The row's new column values (None: leave the row to the ORM)."""
    values = state.dict
    changed = {}
    for key, original in state.committed_state.items():
        if key not in plain:
            return None
        value = values.get(key, NO_VALUE)
        if value is NO_VALUE:
            return None
        if original is NO_VALUE or value != original or type(value) is not type(original):
            changed[key] = value
    return changed


def _before_flush(session: Session, flush_context: UOWTransaction, instances: object) -> None:
    groups: dict[tuple[type[Any], tuple[str, ...]], list[dict[str, Any]]] = {}
    written: list[InstanceState[Any]] = []
    for instance in session.dirty:
        state: InstanceState[Any] = inspect(instance)
        plain = _plain_columns(state.mapper)
        if plain is None or state.key is None:
            continue
        changed = _changes(state, plain)
        if changed is None:
            continue
        written.append(state)
        if changed:
            row = {"id": state.key[1][0], **changed}
            groups.setdefault((state.mapper.class_, tuple(sorted(changed))), []).append(row)
    for (model, _), rows in groups.items():
        matched = bulk.update(session, model, rows)
        if matched != len(rows):
            raise StaleDataError(f"{model.__name__}: {len(rows)} rows to update, "
                                 f"{matched} found")
    for state in written:
        # what the flush does after writing a row: its values are now the committed ones
        state._commit_all(state.dict, session.identity_map)
