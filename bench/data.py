"""Bench data from a fixed seed, written in bulk (COPY on PostgreSQL, executemany on SQLite).

Leads are confirmed, each with a persona and an active enrollment at the first send step of
its persona's nurture journey; ``due`` of them are due now, the rest later.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Engine

from engine.bootstrap import Ripen
from engine.store.tables import Account, Enrollment, Lead

PERSONAS = {"monika-marketing": ["Marketingleiterin", "Head of Marketing", "CMO"],
            "peter-produktionsleiter": ["Produktionsleiter", "Werkleiter", "Leiter Fertigung"],
            "kurt-konstrukteur": ["Konstruktionsleiter", "Entwicklungsingenieur", "CAD-Leiter"]}
FIRST = ["Anna", "Bernd", "Clara", "Dieter", "Eva", "Frank", "Gül", "Hans", "Ines", "Jörg"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"]
CHUNK = 20_000


def _defaults(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    for column in table.columns:
        if column.name not in row and column.default is not None and \
                getattr(column.default, "is_scalar", False):
            row[column.name] = column.default.arg  # type: ignore[attr-defined]
    return row


def _bulk(engine: Engine, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """Insert in chunks: COPY on PostgreSQL, executemany elsewhere."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(_defaults(table, row))
        if len(chunk) >= CHUNK:
            _write(engine, table, chunk)
            chunk = []
    if chunk:
        _write(engine, table, chunk)


def _write(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            connection.execute(insert(table), rows)
        return
    columns = list(rows[0])
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row([row[c] for c in columns])
        raw.commit()
    finally:
        raw.close()


def seed(ripen: Ripen, *, leads: int, due: int, seed: int = 1,
         now: datetime | None = None) -> list[int]:
    """``leads`` confirmed leads in the three persona journeys, ``due`` of them due now.

    Returns the ids of the leads (in insertion order)."""
    rng = random.Random(seed)
    now = now or ripen.clock()
    ripen.journeys.go_live()
    journeys = {j.model.persona: j for j in ripen.config.journeys.values()
                if j.model.kind == "nurture"}
    engine = ripen.db
    accounts = max(1, leads // 20)
    _bulk(engine, Account.__table__, ({  # type: ignore[arg-type]
        "id": i + 1, "name": f"Firma {i + 1} GmbH", "industry": rng.choice(
            ["mechanical-engineering", "automotive", "software", "metalworking", None]),
        "company_size": rng.choice([50, 150, 400, 1200, 5000]),
        "region": rng.choice(["DE", "DE", "DE", "AT", "CH"]), "created_at": now}
        for i in range(accounts)))
    personas = list(PERSONAS)
    choice = [rng.randrange(3) for _ in range(leads)]

    def lead_rows() -> Iterator[dict[str, Any]]:
        for i in range(leads):
            persona = personas[choice[i]]
            yield {"id": i + 1, "public_id": secrets.token_urlsafe(16),
                   "email": f"lead{i + 1}@bench{(i % 997) + 1}.example",
                   "first_name": FIRST[i % len(FIRST)], "last_name": LAST[i % len(LAST)],
                   "job_title": PERSONAS[persona][i % 3], "language": "de",
                   "account_id": (i % accounts) + 1, "persona_id": persona,
                   "status": "confirmed", "funnel_stage": "INF", "source": "website",
                   "consent_version": "2026-11", "tracking_consent": i % 2 == 0,
                   "phone_consent": False, "bant_authority": False, "bant_need": False,
                   "bant_budget": False, "confirmed_at": now - timedelta(days=1),
                   "created_at": now - timedelta(days=1), "updated_at": now}

    _bulk(engine, Lead.__table__, lead_rows())  # type: ignore[arg-type]
    due_ids = set(rng.sample(range(leads), due))

    def enrollment_rows() -> Iterator[dict[str, Any]]:
        for i in range(leads):
            journey = journeys[personas[choice[i]]]
            later = now + timedelta(days=1 + (i % 30), minutes=i % 1440)
            yield {"id": i + 1, "lead_id": i + 1, "journey_id": journey.id,
                   "journey_version": journey.version, "stage": "INF",
                   "step_id": journey.entry[next(iter(journey.entry))], "status": "active",
                   "due_at": now - timedelta(minutes=1) if i in due_ids else later,
                   "stage_entered_at": now - timedelta(days=1),
                   "step_entered_at": now - timedelta(days=1),
                   "started_at": now - timedelta(days=1)}

    _bulk(engine, Enrollment.__table__, enrollment_rows())  # type: ignore[arg-type]
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
