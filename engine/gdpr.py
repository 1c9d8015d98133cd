"""GDPR: a lead's data on request (Art. 15/20) and its erasure (Art. 17).

Erasure removes personal data everywhere and keeps only a hashed suppression entry (so the
address is never mailed again by accident) and anonymous aggregates (counts of events,
consents and handovers, with no way back to the person).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from engine.addresses import address_hash, normalise_email
from engine.clock import Clock
from engine.errors import RipenError
from engine.store.tables import (
    Account,
    ConsentRecord,
    Enrollment,
    Event,
    Handover,
    MailOutbox,
    ScoreEntry,
    SendDeferral,
    StageEntry,
)
from engine.store.uow import UowFactory

PROFILE_FIELDS = ("email", "first_name", "last_name", "job_title", "phone", "language",
                  "time_zone", "persona_id", "status", "funnel_stage", "source", "campaign",
                  "bant_authority", "bant_need", "bant_budget", "bant_timeline_months",
                  "consent_version", "tracking_consent", "phone_consent", "confirmed_at",
                  "unsubscribed_at", "created_at", "updated_at")


class UnknownLead(RipenError):
    pass


def _plain(row: Any, skip: tuple[str, ...] = ("lead_id",)) -> dict[str, Any]:
    data = row.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in skip}


def export(uow_factory: UowFactory, email: str) -> dict[str, Any]:
    """Everything ripen holds about the person, as JSON-ready data."""
    address = normalise_email(email)
    with uow_factory() as uow:
        lead = uow.lead_by_email(address)
        if lead is None or lead.id is None:
            raise UnknownLead(f"no lead with the address {address}")
        account = uow.session.get(Account, lead.account_id) if lead.account_id else None
        profile = {name: getattr(lead, name) for name in PROFILE_FIELDS}
        return {
            "profile": {k: v.isoformat() if isinstance(v, datetime) else v
                        for k, v in profile.items()},
            "account": _plain(account, ()) if account else None,
            "consents": [_plain(r) for r in uow.rows_of_lead(ConsentRecord, lead.id)],
            "events": [_plain(r) for r in uow.rows_of_lead(Event, lead.id)],
            "scores": [_plain(r) for r in uow.rows_of_lead(ScoreEntry, lead.id)],
            "enrollments": [_plain(r) for r in uow.rows_of_lead(Enrollment, lead.id)],
            "handovers": [_plain(r) for r in uow.rows_of_lead(Handover, lead.id)],
            "stages_entered": [_plain(r) for r in uow.rows_of_lead(StageEntry, lead.id)],
            "mails_deferred": [_plain(r) for r in uow.rows_of_lead(SendDeferral, lead.id)],
            "mails": [{"subject": r.subject, "status": r.status, "created_at":
                       r.created_at.isoformat(), "sent_at": r.sent_at.isoformat()
                       if r.sent_at else None, "message_id": r.message_id}
                      for r in uow.rows_of_lead(MailOutbox, lead.id)],
        }


def erase(uow_factory: UowFactory, email: str, *, clock: Clock) -> dict[str, int]:
    """Erase the person; return the anonymous aggregates kept."""
    address = normalise_email(email)
    now = clock()
    with uow_factory() as uow:
        lead = uow.lead_by_email(address)
        if lead is None or lead.id is None:
            raise UnknownLead(f"no lead with the address {address}")
        lead_id = lead.id
        consents = uow.rows_of_lead(ConsentRecord, lead_id)
        for record in consents:  # keep what happened when; drop who, where and the text
            record.ip = record.user_agent = record.doi_message_id = None
            record.text_shown = None
            uow.add(record)
        events = uow.rows_of_lead(Event, lead_id)
        for event in events:
            event.data = {}
            event.idempotency_key = None
            uow.add(event)
        handovers = uow.handovers_of(lead_id)
        uow.delete_webhooks_of([h.id for h in handovers if h.id is not None])
        uow.delete_rows_of_lead(MailOutbox, lead_id)
        uow.end_enrollments(lead_id, "erased", now)
        digest = address_hash(address)
        uow.forget_attempts(email_hash=digest)
        for name in ("email", "first_name", "last_name", "job_title", "phone", "time_zone",
                     "campaign", "doi_nonce"):
            setattr(lead, name, None)
        lead.pending_profile = None
        lead.public_id = secrets.token_urlsafe(16)  # old unsubscribe links point nowhere
        lead.status = "erased"
        lead.tracking_consent = lead.phone_consent = False
        lead.updated_at = now
        uow.add(lead)
        uow.suppress(digest, "erased", now)
        uow.commit()
        return {"consents": len(consents), "events": len(events), "handovers": len(handovers)}


__all__ = ["UnknownLead", "erase", "export"]
