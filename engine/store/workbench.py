"""The workbench's queries (engine/workbench.py assembles them): grouped counts of a
journey's enrollments, the week's sent mails and clicks, the leads at a step, a search."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_
from sqlalchemy import select as columns
from sqlmodel import Session, col

from engine.store import bulk
from engine.store.bulk import in_chunks
from engine.store.engagement import engaged_link
from engine.store.tables import Account, Enrollment, Event, Lead, MailOutbox, TrackedLink


def enrollment_counts(session: Session, journey_id: str | None, now: datetime
                      ) -> Sequence[Any]:
    """(journey, step, status, leads, of them due now) of the active and quarantined
    enrollments of one journey (every version together), or of all (None)."""
    query = (columns(col(Enrollment.journey_id), col(Enrollment.step_id),
                     col(Enrollment.status), func.count(),
                     func.sum(case((col(Enrollment.due_at) <= now, 1), else_=0)))
             .where(col(Enrollment.status).in_(("active", "quarantined")))
             .group_by(col(Enrollment.journey_id), col(Enrollment.step_id),
                       col(Enrollment.status)))
    if journey_id is not None:
        query = query.where(col(Enrollment.journey_id) == journey_id)
    return session.execute(query).all()


def _prefix(journey_id: str | None) -> str:
    return f"journey:{journey_id}@" if journey_id is not None else "journey:"


def sent_keys(session: Session, journey_id: str | None, since: datetime) -> list[str]:
    """Outbox keys of the journey's (or every journey's) mails sent since ``since``."""
    return list(session.execute(
        columns(col(MailOutbox.idempotency_key))
        .where(col(MailOutbox.idempotency_key).startswith(_prefix(journey_id)),
               col(MailOutbox.status) == "sent", col(MailOutbox.sent_at) >= since)
    ).scalars())


def link_keys(session: Session, journey_id: str | None, since: datetime,
              tokens: Iterable[str]) -> dict[str, str | None]:
    """Token → outbox key of those of ``tokens`` that are the journey's mail links (not open
    pixels) made since ``since``: looked up by token (the clicked few, not the week's links)."""
    found: dict[str, str | None] = {}
    for chunk in in_chunks(tokens):
        found.update(session.execute(
            columns(col(TrackedLink.token_id), col(TrackedLink.outbox_key))
            .where(bulk.among(session, col(TrackedLink.token_id), chunk),
                   col(TrackedLink.outbox_key).startswith(_prefix(journey_id)),
                   col(TrackedLink.created_at) >= since,
                   col(TrackedLink.kind) != "open")).tuples().all())
    return found


def clicked_tokens(session: Session, since: datetime) -> set[str]:
    """Link tokens clicked by a person (not a mail scanner) since ``since``."""
    clicked = (engaged_link("click", None, data, False) for data in session.execute(
        columns(col(Event.data)).where(col(Event.type) == "click",
                                       col(Event.is_scanner).is_(False),
                                       col(Event.occurred_at) >= since)).scalars())
    return {token for token in clicked if token is not None}


def leads_at_step(session: Session, journey_id: str, step_id: str, limit: int
                  ) -> Sequence[Any]:
    """(lead, company, enrollment) waiting or quarantined at a step, the longest due first."""
    return session.execute(
        columns(Lead, col(Account.name), Enrollment)
        .join(Enrollment, col(Enrollment.lead_id) == Lead.id)
        .outerjoin(Account, col(Account.id) == Lead.account_id)
        .where(col(Enrollment.journey_id) == journey_id, col(Enrollment.step_id) == step_id,
               col(Enrollment.status).in_(("active", "quarantined")))
        .order_by(col(Enrollment.due_at).asc(), col(Lead.id).asc()).limit(limit)).all()


def search(session: Session, needle: str, limit: int) -> Sequence[Any]:
    """(lead, company) whose address, name or company is LIKE ``needle`` (lower case), the
    newest first.

    A scan of every lead, so each row costs as little as each database allows (100k leads:
    ~40 ms on SQLite, ~90 ms on PostgreSQL, against ~250 ms for ``lower()`` of each column
    and a join): companies are matched first (few), then the lead's own columns — on SQLite
    with a plain LIKE per column (it ignores ASCII case, as its ``lower()`` does; the full
    name only for a needle with a space), on PostgreSQL with one ``lower()`` of the address
    and name together."""
    companies = columns(col(Account.id)).where(
        func.lower(col(Account.name)).like(needle))
    first = func.coalesce(col(Lead.first_name), "")
    last = func.coalesce(col(Lead.last_name), "")
    if session.get_bind().dialect.name == "postgresql":
        own = [func.lower(col(Lead.email) + " " + first + " " + last).like(needle)]
    else:
        own = [col(Lead.email).like(needle), col(Lead.first_name).like(needle),
               col(Lead.last_name).like(needle)]
        if " " in needle:
            own.append((first + " " + last).like(needle))
    return session.execute(
        columns(Lead, col(Account.name))
        .outerjoin(Account, col(Account.id) == Lead.account_id)
        .where(or_(*own, col(Lead.account_id).in_(companies)))
        .order_by(col(Lead.id).desc()).limit(limit)).all()
