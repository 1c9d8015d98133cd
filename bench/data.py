"""Bench data from a fixed seed, written by ripen's own bulk writer (COPY on PostgreSQL,
executemany on SQLite).

Leads are confirmed, each with a persona and an active enrollment at the first send step of
its persona's nurture journey; ``due`` of them are due now, the rest later. Beyond
``BASE`` leads (the 1M-lead due selection), the first ``BASE`` are written as usual and the
rest are copies of them made by the database (``INSERT … SELECT``, new ids, addresses and
public ids, never due): the due leads and their distribution stay those of the base.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from engine.bootstrap import Ripen
from engine.store import bulk
from engine.store.tables import Account, Enrollment, Lead
from engine.store.types import UtcDateTime

PERSONAS = {"monika-marketing": ["Marketingleiterin", "Head of Marketing", "CMO"],
            "peter-produktionsleiter": ["Produktionsleiter", "Werkleiter", "Leiter Fertigung"],
            "kurt-konstrukteur": ["Konstruktionsleiter", "Entwicklungsingenieur", "CAD-Leiter"]}
FIRST = ["Anna", "Bernd", "Clara", "Dieter", "Eva", "Frank", "Gül", "Hans", "Ines", "Jörg"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"]
CHUNK = 20_000
BASE = 100_000


def _bulk(engine: Engine, model: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Insert in chunks of ``CHUNK``, a transaction each."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            _write(engine, model, chunk)
            chunk = []
    if chunk:
        _write(engine, model, chunk)


def _write(engine: Engine, model: Any, rows: list[dict[str, Any]]) -> None:
    with Session(engine) as session:
        bulk.insert(session, model, rows)
        session.commit()


def _replicate(engine: Engine, *, base: int, total: int, now: datetime) -> None:
    """Leads ``base + 1 … total`` (and their enrollments) as copies of leads ``1 … base``,
    made by the database; a copy of a due enrollment is due a day later."""
    lead_table: Table = Lead.__table__  # type: ignore[attr-defined]
    enrollment_table: Table = Enrollment.__table__  # type: ignore[attr-defined]
    changed = {"id": "id + :offset", "public_id": "public_id || :suffix",
               "email": "'r' || :copy || '.' || email", "lead_id": "lead_id + :offset",
               "due_at": "CASE WHEN due_at <= :now THEN :later ELSE due_at END"}

    def copy(table: Table) -> Any:
        names = [c.name for c in table.columns]
        values = ", ".join(changed.get(n, n) if n in changed else f'"{n}"' for n in names)
        columns = ", ".join(f'"{n}"' for n in names)
        statement = text(f'INSERT INTO "{table.name}" ({columns}) SELECT {values} '  # noqa: S608 (names from the table definitions)
                         f'FROM "{table.name}" '
                         f'WHERE "{"id" if table is lead_table else "lead_id"}" <= :base')
        if "due_at" in names:
            statement = statement.bindparams(bindparam("now", type_=UtcDateTime()),
                                             bindparam("later", type_=UtcDateTime()))
        return statement

    statements = [copy(lead_table), copy(enrollment_table)]
    for number, offset in enumerate(range(base, total, base), start=1):
        size = min(base, total - offset)
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(statement, {
                    "offset": offset, "suffix": f"-r{number}", "copy": number,
                    "base": size, "now": now, "later": now + timedelta(days=1)})


def seed(ripen: Ripen, *, leads: int, due: int, seed: int = 1,
         now: datetime | None = None) -> list[int]:
    """``leads`` confirmed leads in the three persona journeys, ``due`` of them due now
    (all among the first ``BASE``; beyond it the leads are the database's copies).

    Returns the ids of the leads (in insertion order)."""
    rng = random.Random(seed)
    now = now or ripen.clock()
    ripen.journeys.go_live()
    journeys = {j.model.persona: j for j in ripen.config.journeys.values()
                if j.model.kind == "nurture"}
    engine = ripen.db
    written = min(leads, BASE)
    accounts = max(1, written // 20)
    _bulk(engine, Account, ({
        "id": i + 1, "name": f"Firma {i + 1} GmbH", "industry": rng.choice(
            ["mechanical-engineering", "automotive", "software", "metalworking", None]),
        "company_size": rng.choice([50, 150, 400, 1200, 5000]),
        "region": rng.choice(["DE", "DE", "DE", "AT", "CH"]), "created_at": now}
        for i in range(accounts)))
    personas = list(PERSONAS)
    choice = [rng.randrange(3) for _ in range(written)]
    day_ago, minute_ago = now - timedelta(days=1), now - timedelta(minutes=1)

    def lead_rows() -> Iterator[dict[str, Any]]:
        for i in range(written):
            persona = personas[choice[i]]
            yield {"id": i + 1, "public_id": secrets.token_urlsafe(16),
                   "email": f"lead{i + 1}@bench{(i % 997) + 1}.example",
                   "first_name": FIRST[i % len(FIRST)], "last_name": LAST[i % len(LAST)],
                   "job_title": PERSONAS[persona][i % 3], "language": "de",
                   "account_id": (i % accounts) + 1, "persona_id": persona,
                   "status": "confirmed", "funnel_stage": "INF", "source": "website",
                   "consent_version": "2026-11", "tracking_consent": i % 2 == 0,
                   "phone_consent": False, "bant_authority": False, "bant_need": False,
                   "bant_budget": False, "confirmed_at": day_ago, "created_at": day_ago,
                   "updated_at": now}

    _bulk(engine, Lead, lead_rows())
    due_ids = set(rng.sample(range(written), due))

    def enrollment_rows() -> Iterator[dict[str, Any]]:
        for i in range(written):
            journey = journeys[personas[choice[i]]]
            later = now + timedelta(days=1 + (i % 30), minutes=i % 1440)
            yield {"id": i + 1, "lead_id": i + 1, "journey_id": journey.id,
                   "journey_version": journey.version, "stage": "INF",
                   "step_id": journey.entry[next(iter(journey.entry))], "status": "active",
                   "due_at": minute_ago if i in due_ids else later,
                   "stage_entered_at": day_ago, "step_entered_at": day_ago,
                   "started_at": day_ago}

    _bulk(engine, Enrollment, enrollment_rows())
    if leads > written:
        _replicate(engine, base=written, total=leads, now=now)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            for table in ("account", "lead", "enrollment"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 (fixed names)
                    f"(SELECT max(id) FROM \"{table}\"))")
            connection.exec_driver_sql("ANALYZE")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return [i + 1 for i in range(leads)]


def spread_due(ripen: Ripen, journey_ids: list[str], *, now: datetime | None = None) -> None:
    """Move the due enrollments of ``seed`` round-robin into the recycling journeys named
    (copies of ``wiedervorlage``, at their first step), beside the three persona journeys:
    a tick with due leads in ``3 + len(journey_ids)`` journeys."""
    now = now or ripen.clock()
    ways = 3 + len(journey_ids)
    table = Enrollment.__table__  # type: ignore[attr-defined]
    with ripen.db.begin() as connection:
        for k, journey_id in enumerate(journey_ids, start=3):
            journey = ripen.config.journeys[journey_id]
            stage = next(iter(journey.entry))
            connection.execute(update(table).where(table.c.due_at <= now,
                                                   table.c.id % ways == k).values(
                journey_id=journey.id, journey_version=journey.version, stage=stage.value,
                step_id=journey.entry[stage]))


def make_due(ripen: Ripen, count: int, *, now: datetime | None = None) -> int:
    """Make the active enrollments of the first ``count`` leads due now (a minute ago), as
    ``seed`` makes its due ones; returns how many are due after it."""
    now = now or ripen.clock()
    table = Enrollment.__table__  # type: ignore[attr-defined]
    with ripen.db.begin() as connection:
        connection.execute(update(table).where(table.c.lead_id <= count,
                                               table.c.status == "active").values(
            due_at=now - timedelta(minutes=1)))
        due = connection.execute(select(func.count()).select_from(table).where(
            table.c.status == "active", table.c.due_at <= now)).scalar_one()
    return int(due)
