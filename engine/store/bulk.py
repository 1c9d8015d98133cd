"""Set-based writes for batches: thousands of rows per statement, no ORM objects.

A tick writes thousands of outbox rows, tracked links and enrollment updates. Through the
ORM each row costs ~40 µs; here a statement is compiled once per table and set of columns,
values are converted once by SQLAlchemy's own column types (a datetime repeated across a
batch — its ``now`` — is converted once), and the driver runs ``executemany`` in the unit
of work's transaction (SQLAlchemy's statement events still see it). The rows commit or roll
back with that transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ARRAY, Column, ColumnElement, Table, any_, literal
from sqlalchemy.engine import Connection, Dialect
from sqlmodel import Session

from engine.store.types import UtcDateTime

Convert = Callable[[Any], Any]
T = TypeVar("T", int, str)

#: Values per ``IN (…)`` list: well under SQLite's (32,766) and PostgreSQL's parameter limits.
IN_CHUNK = 900


def in_chunks(values: Iterable[T]) -> Iterator[list[T]]:
    """The distinct values, sorted, in lists of at most ``IN_CHUNK`` for ``IN`` queries."""
    wanted = sorted(set(values))
    for start in range(0, len(wanted), IN_CHUNK):
        yield wanted[start:start + IN_CHUNK]


def among(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)`` for a batch lookup. On PostgreSQL it is ``column = ANY(array)``:
    one parameter, so the statement is the same for every batch and a generic plan of it
    still uses the index (psycopg prepares a statement run five times; an ``IN`` list of 900
    parameters then got a sequential scan comparing each row with each value)."""
    wanted = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(wanted, ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(wanted)  # type: ignore[no-any-return]


_STATEMENTS: dict[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], str] = {}
_CONVERTERS: dict[tuple[str, str, str], Convert | None] = {}


def _converter(dialect: Dialect, column: Column[Any]) -> Convert | None:
    """The column type's bind processing (None: the value goes to the driver as it is);
    datetimes are memoised on the last value (a batch repeats its ``now``)."""
    key = (dialect.name, column.table.name, column.name)
    if key in _CONVERTERS:
        return _CONVERTERS[key]
    # SQLAlchemy's own conversion for the column, exactly as its ORM binds it
    process: Convert | None = column.type._cached_bind_processor(dialect)
    if process is not None and isinstance(column.type, UtcDateTime):
        process = _last_value(process)
    _CONVERTERS[key] = process
    return process


def _last_value(process: Convert) -> Convert:
    last: list[Any] = [object(), None]

    def convert(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]
    return convert


def _placeholder(dialect: Dialect, name: str) -> str:
    return f"%({name})s" if dialect.paramstyle == "pyformat" else f":{name}"


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _defaults(table: Table, names: set[str]) -> dict[str, Any]:
    """Scalar column defaults for the columns a row leaves out."""
    found = {}
    for column in table.columns:
        default = column.default
        if column.name not in names and default is not None and \
                getattr(default, "is_scalar", False):
            found[column.name] = default.arg  # type: ignore[attr-defined]
    return found


def _run(session: Session, table: Table, kind: str, columns: tuple[str, ...],
         keys: tuple[str, ...], build: Callable[[Dialect], str],
         rows: Sequence[Mapping[str, Any]]) -> int:
    dialect = session.get_bind().dialect
    cache = (dialect.name, table.name, kind, columns, keys)
    sql = _STATEMENTS.get(cache)
    if sql is None:
        sql = _STATEMENTS[cache] = build(dialect)
    converters = [(name, _converter(dialect, table.c[name])) for name in columns + keys]
    params = [{name: (convert(row[name]) if convert is not None and row[name] is not None
                      else row[name]) for name, convert in converters} for row in rows]
    result = session.connection().exec_driver_sql(sql, params)
    return int(result.rowcount)


def insert(session: Session, model: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys; left-out columns take their scalar
    default) in one statement inside the session's transaction: ``COPY`` on PostgreSQL,
    ``executemany`` elsewhere."""
    if not rows:
        return
    table = _table(model)
    given = tuple(rows[0])
    defaults = _defaults(table, set(given))
    columns = given + tuple(sorted(defaults))
    if defaults:
        rows = [{**defaults, **row} for row in rows]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, rows)
        return

    def build(dialect: Dialect) -> str:
        names = ", ".join(f'"{c}"' for c in columns)
        values = ", ".join(_placeholder(dialect, c) for c in columns)
        return f'INSERT INTO "{table.name}" ({names}) VALUES ({values})'  # noqa: S608 (names from the table definition)

    _run(session, table, "insert", columns, (), build, rows)


def _copy(connection: Connection, table: Table, columns: tuple[str, ...],
          rows: Sequence[Mapping[str, Any]]) -> None:
    """PostgreSQL's COPY through psycopg, in the connection's transaction (a tenth of the
    client work of an ``executemany`` per row)."""
    converters = [(name, _converter(connection.dialect, table.c[name])) for name in columns]
    names = ", ".join(f'"{c}"' for c in columns)
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, \
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([convert(row[name]) if convert is not None and row[name] is not None
                            else row[name] for name, convert in converters])


def update(session: Session, model: Any, rows: Sequence[Mapping[str, Any]], *,
           match: tuple[str, ...] = ("id",)) -> int:
    """Update each row where its ``match`` columns equal its values (every row sets the
    same columns) in one ``executemany``; returns the number of rows changed."""
    if not rows:
        return 0
    table = _table(model)
    columns = tuple(name for name in rows[0] if name not in match)

    def build(dialect: Dialect) -> str:
        sets = ", ".join(f'"{c}" = {_placeholder(dialect, c)}' for c in columns)
        where = " AND ".join(f'"{c}" = {_placeholder(dialect, c)}' for c in match)
        return f'UPDATE "{table.name}" SET {sets} WHERE {where}'  # noqa: S608 (names from the table definition)

    return _run(session, table, "update", columns, match, build, rows)


def set_on(session: Session, model: Any, ids: Sequence[int], values: Mapping[str, Any], *,
           count_up: tuple[str, ...] = (), where: Mapping[str, Any] | None = None) -> int:
    """The same ``values`` on every row of ``ids`` (``count_up`` columns go up by one),
    only where the ``where`` columns hold their values; returns the rows changed. One
    statement: ``id = ANY(array)`` on PostgreSQL, an ``executemany`` by id elsewhere (an
    ``IN`` list rendered anew per call costs more than SQLite's executemany)."""
    if not ids:
        return 0
    table = _table(model)
    where = where or {}
    names, matched = tuple(values), tuple(where)
    connection = session.connection()
    dialect = connection.dialect
    postgres = dialect.name == "postgresql"
    cache = (dialect.name, table.name, "set_on", names + count_up, matched)
    sql = _STATEMENTS.get(cache)
    if sql is None:
        sets = [f'"{c}" = {_placeholder(dialect, "v_" + c)}' for c in names] + \
            [f'"{c}" = "{c}" + 1' for c in count_up]
        conditions = [f'"id" = ANY({_placeholder(dialect, "ids")})' if postgres
                      else f'"id" = {_placeholder(dialect, "id")}'] + \
            [f'"{c}" = {_placeholder(dialect, "w_" + c)}' for c in matched]
        sql = _STATEMENTS[cache] = (f'UPDATE "{table.name}" SET {", ".join(sets)} '  # noqa: S608 (names from the table definition)
                                    f'WHERE {" AND ".join(conditions)}')
    common: dict[str, Any] = {}
    for prefix, given in (("v_", values), ("w_", where)):
        for name, value in given.items():
            convert = _converter(dialect, table.c[name])
            common[prefix + name] = convert(value) if convert and value is not None else value
    if postgres:
        return int(connection.exec_driver_sql(sql, {**common, "ids": list(ids)}).rowcount)
    return int(connection.exec_driver_sql(sql, [{**common, "id": i} for i in ids]).rowcount)


__all__ = ["IN_CHUNK", "among", "in_chunks", "insert", "set_on", "update"]
