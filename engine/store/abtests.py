"""The counts behind an A/B test's results (engine/abtest.py reads them): per variant of a
send step, the mails delivered, opened, clicked, and the leads that reached a later stage."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select as columns
from sqlmodel import Session, col

from engine.store.bulk import in_chunks
from engine.store.engagement import engaged_link
from engine.store.tables import Event, MailOutbox, StageEntry, TrackedLink


def variant_counts(session: Session, journey_id: str, step_id: str,
                   later_stages: list[str]) -> dict[str, dict[str, int]]:
    """``{variant: {"delivered", "opened", "clicked", "next_stage"}}`` for the step's mails
    of every version of the journey."""
    mails = session.execute(
        columns(col(MailOutbox.idempotency_key), col(MailOutbox.variant),
                col(MailOutbox.status), col(MailOutbox.lead_id), col(MailOutbox.created_at))
        .where(col(MailOutbox.idempotency_key).startswith(f"journey:{journey_id}@"),
               col(MailOutbox.idempotency_key).contains(f":{step_id}:"),
               col(MailOutbox.variant).is_not(None))).all()
    ours = [m for m in mails if m[0].split(":")[2:3] == [step_id]]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if not ours:
        return {}
    variant_of = {key: variant for key, variant, *_ in ours}
    tokens: dict[str, str] = {}
    for keys in in_chunks(variant_of):
        for token, key in session.execute(
                columns(col(TrackedLink.token_id), col(TrackedLink.outbox_key))
                .where(col(TrackedLink.outbox_key).in_(keys))).all():
            if key is not None:
                tokens[token] = key
    opened: set[str] = set()
    clicked: set[str] = set()
    leads = {lead for *_, lead, _ in ours if lead is not None}
    for chunk in in_chunks(leads):
        for kind, key, data, scanner in session.execute(
                columns(col(Event.type), col(Event.idempotency_key), col(Event.data),
                        col(Event.is_scanner))
                .where(col(Event.lead_id).in_(chunk),
                       col(Event.type).in_(("open", "click")))).all():
            mail = tokens.get(engaged_link(kind, key, data, scanner) or "")
            if mail:
                (opened if kind == "open" else clicked).add(mail)
    entered: dict[int, list[datetime]] = defaultdict(list)
    if later_stages:
        for chunk in in_chunks(leads):
            for lead, at in session.execute(
                    columns(col(StageEntry.lead_id), col(StageEntry.entered_at))
                    .where(col(StageEntry.lead_id).in_(chunk),
                           col(StageEntry.journey_id) == journey_id,
                           col(StageEntry.stage).in_(later_stages))).all():
                entered[lead].append(at)
    for key, variant, status, lead, created in ours:
        row = counts[variant]
        if status != "sent":
            continue
        row["delivered"] += 1
        row["opened"] += key in opened
        row["clicked"] += key in clicked
        row["next_stage"] += any(at >= created for at in entered.get(lead, ()))
    return {variant: dict(row) for variant, row in counts.items()}
