"""The mail outbox as the sender sees it: claim a batch, mark DATA, record results.

Every statement here works on a batch (a claim of hundreds of rows, a round of mails per
DATA mark, a round of results), reading only the columns sending needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Update, bindparam, or_, update
from sqlalchemy import select as columns
from sqlmodel import Session, col, select

from engine.store import bulk
from engine.store.bulk import in_chunks
from engine.store.tables import Lead, MailBody, MailOutbox


@dataclass(frozen=True, slots=True)
class Claimed:
    """An outbox row a sender holds: what it needs to build, check and record the mail."""

    id: int
    lead_id: int | None
    kind: str
    category: str
    to_address: str | None
    subject: str
    message_id: str
    body_html: str | None  # None: its body is gone (cannot happen to a mail not yet ended)
    body_text: str | None
    headers: dict[str, Any]
    created_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class LeadState:
    """What the last check before sending reads about a mail's lead."""

    status: str
    mail_paused_until: datetime | None


_CLAIMED: tuple[Any, ...] = (
    MailOutbox.id, MailOutbox.lead_id, MailOutbox.kind, MailOutbox.category,
    MailOutbox.to_address, MailOutbox.subject, MailOutbox.message_id, MailBody.body_html,
    MailBody.body_text, MailOutbox.headers, MailOutbox.created_at, MailOutbox.attempts)


@cache
def _renew() -> Update:
    """A sender's lease renewed on all the rows it holds (built once)."""
    table = MailOutbox.__table__  # type: ignore[attr-defined]
    return (update(table).where(table.c.lease_owner == bindparam("owner"),
                                table.c.status == "sending")
            .values(lease_until=bindparam("until")))


def claim(session: Session, *, now: datetime, owner: str, lease_until: datetime, limit: int,
          ids: Sequence[int] | None = None) -> list[Claimed]:
    """Due rows (or just ``ids``), oldest first, leased to ``owner``; SKIP LOCKED on
    PostgreSQL so that senders never collide."""
    query = (columns(*_CLAIMED)
             .outerjoin(MailBody, col(MailBody.message_id) == col(MailOutbox.message_id))
             .where(col(MailOutbox.status).in_(("pending", "retry")),
                    or_(col(MailOutbox.next_attempt_at).is_(None),
                        col(MailOutbox.next_attempt_at) <= now))
             .order_by(col(MailOutbox.id)).limit(limit))
    if ids is not None:
        query = query.where(bulk.among(session, col(MailOutbox.id), ids))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=MailOutbox, skip_locked=True)
    rows = [Claimed(*row) for row in session.execute(query).all()]
    bulk.set_on(session, MailOutbox, [row.id for row in rows],
                {"status": "sending", "lease_owner": owner, "lease_until": lease_until})
    return rows


def claimed_by_key(session: Session, rows: Sequence[dict[str, Any]]) -> list[Claimed]:
    """Rows this transaction inserted (``bulk.insert`` reads no ids back) as ``Claimed``,
    in their order: their ids looked up by idempotency key."""
    ids: dict[str, int] = {}
    for chunk in in_chunks(row["idempotency_key"] for row in rows):
        ids.update({key: row_id for row_id, key in session.exec(
            select(MailOutbox.id, MailOutbox.idempotency_key).where(
                bulk.among(session, col(MailOutbox.idempotency_key), chunk))).all()
            if row_id is not None})
    return [Claimed(id=ids[row["idempotency_key"]], lead_id=row["lead_id"], kind=row["kind"],
                    category=row["category"], to_address=row["to_address"],
                    subject=row["subject"], message_id=row["message_id"],
                    body_html=row["body_html"], body_text=row["body_text"],
                    headers=row["headers"], created_at=row["created_at"],
                    attempts=row.get("attempts", 0)) for row in rows]


def mark_data_started(session: Session, ids: Sequence[int], *, owner: str, now: datetime,
                      lease_until: datetime, renew_batch: bool) -> set[int]:
    """The mark before DATA for a round of mails, only on rows ``owner`` still holds (with
    ``renew_batch`` the lease of all its rows is renewed too); returns the ids marked —
    a row missing from it was taken over after an expired lease and must not be sent.
    By primary key and owner only: a row ``owner`` holds is `sending` (a status predicate
    leads PostgreSQL's planner to the status index, slower per round)."""
    marked = bulk.set_on(session, MailOutbox, ids,
                         {"data_started_at": now, "lease_until": lease_until},
                         where={"lease_owner": owner})
    if renew_batch:
        session.connection().execute(_renew(), {"owner": owner, "until": lease_until})
    if marked == len(ids):
        return set(ids)
    held = session.exec(select(MailOutbox.id).where(
        bulk.among(session, col(MailOutbox.id), ids), col(MailOutbox.lease_owner) == owner)).all()
    return {row_id for row_id in held if row_id is not None}


BODY_COLUMNS = ("body_html", "body_text")


def split_bodies(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """Outbox rows as the engine writes them (bodies included) as the outbox's own rows and
    their ``mail_body`` rows, to be inserted in that order."""
    mails, bodies = [], []
    for row in rows:
        mails.append({k: v for k, v in row.items() if k not in BODY_COLUMNS})
        bodies.append({"message_id": row["message_id"], "body_html": row["body_html"],
                       "body_text": row["body_text"]})
    return mails, bodies


def record(session: Session, changes: Iterable[dict[str, Any]]) -> None:
    """New columns by row id (each change carries ``id``; one with ``attempts`` counts an
    attempt: the column goes up by one). Rows with the same new values — a round's sent
    mails — are written by one statement."""
    groups: dict[tuple[bool, tuple[tuple[str, Any], ...]], list[int]] = {}
    for change in changes:
        values = tuple(sorted((k, v) for k, v in change.items() if k not in ("id", "attempts")))
        groups.setdefault(("attempts" in change, values), []).append(change["id"])
    for (attempt, values), ids in groups.items():
        bulk.set_on(session, MailOutbox, ids, dict(values),
                    count_up=("attempts",) if attempt else ())


def lead_states(session: Session, lead_ids: Iterable[int]) -> dict[int, LeadState]:
    found: dict[int, LeadState] = {}
    for chunk in in_chunks(lead_ids):
        for lead_id, status, paused in session.exec(
                select(Lead.id, Lead.status, Lead.mail_paused_until).where(
                    bulk.among(session, col(Lead.id), chunk))).all():
            if lead_id is not None:
                found[lead_id] = LeadState(status, paused)
    return found
