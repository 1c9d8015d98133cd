"""GDPR: a lead's data on request (Art. 15/20) and its erasure (Art. 17).

Every row that carries a person's data is tied to the lead (mails to them and about them —
the rep's notice, the SLA escalation —, webhook payloads, events, links, consent records …),
so the export finds it and the erasure removes or anonymises it. What remains of an erased
person: the hashed suppression entry (the address is never mailed again by accident),
anonymous rows for the aggregates (events without their data, stages, scores, handovers
without names), and the consent ledger pseudonymised — action, purpose, time, the text's
version and hash, no address, IP or user agent — as proof of a lawful past consent, deleted
after ``retention.erased_consent_proof`` (three years). A CRM that received the lead hears
``lead.erased`` with the ids it already has.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine import crm_events
from engine.addresses import address_hash, normalise_email
from engine.clock import Clock
from engine.config.sla import WebhookEndpoint
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
    TrackedLink,
    WebhookDelivery,
)
from engine.store.uow import UowFactory

PROFILE_FIELDS = ("email", "first_name", "last_name", "job_title", "phone", "language",
                  "time_zone", "persona_id", "status", "funnel_stage", "sales_stage", "source",
                  "campaign", "bant_authority", "bant_need", "bant_budget",
                  "bant_timeline_months", "consent_version", "tracking_consent",
                  "phone_consent", "confirmed_at", "unsubscribed_at", "created_at",
                  "updated_at")
#: The lead's own columns that hold personal data; erasure empties them.
PERSONAL = ("email", "first_name", "last_name", "job_title", "phone", "time_zone", "campaign",
            "doi_nonce", "pending_profile", "customer_journey", "customer_stage")


class UnknownLead(RipenError):
    pass


def _plain(row: Any, skip: tuple[str, ...] = ("lead_id",)) -> dict[str, Any]:
    data = row.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in skip}


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export(uow_factory: UowFactory, email: str) -> dict[str, Any]:
    """Everything ripen holds about the person, as JSON-ready data: every row the erasure
    would touch, and who received the person's data (CRM endpoints, reps), with dates."""
    address = normalise_email(email)
    with uow_factory() as uow:
        lead = uow.lead_by_email(address)
        if lead is None or lead.id is None:
            raise UnknownLead(f"no lead with the address {address}")
        account = uow.session.get(Account, lead.account_id) if lead.account_id else None
        profile = {name: getattr(lead, name) for name in PROFILE_FIELDS}
        handovers = uow.handovers_of(lead.id)
        deliveries = _deliveries(uow, lead.id, handovers)
        mails = uow.rows_of_lead(MailOutbox, lead.id)
        return {
            "profile": {k: v.isoformat() if isinstance(v, datetime) else v
                        for k, v in profile.items()},
            "details_waiting_for_confirmation": lead.pending_profile,
            "account": _plain(account, ()) if account else None,
            "consents": [_plain(r) for r in uow.rows_of_lead(ConsentRecord, lead.id)],
            "events": [_plain(r) for r in uow.rows_of_lead(Event, lead.id)],
            "scores": [_plain(r) for r in uow.rows_of_lead(ScoreEntry, lead.id)],
            "enrollments": [_plain(r) for r in uow.rows_of_lead(Enrollment, lead.id)],
            "handovers": [_plain(r) for r in handovers],
            "stages_entered": [_plain(r) for r in uow.rows_of_lead(StageEntry, lead.id)],
            "mails_deferred": [_plain(r) for r in uow.rows_of_lead(SendDeferral, lead.id)],
            "tracked_links": [{"content": r.content_id, "kind": r.kind, "url": r.url,
                               "created_at": _when(r.created_at)}
                              for r in uow.rows_of_lead(TrackedLink, lead.id)],
            "mails": [{"to": r.to_address, "category": r.category, "subject": r.subject,
                       "status": r.status, "created_at": _when(r.created_at),
                       "sent_at": _when(r.sent_at), "message_id": r.message_id}
                      for r in mails],
            "webhooks": [{"endpoint": d.endpoint_id, "event": d.event_type,
                          "webhook_id": d.webhook_id, "status": d.status,
                          "created_at": _when(d.created_at),
                          "delivered_at": _when(d.delivered_at), "payload": d.payload}
                         for d in deliveries],
            "recipients": _recipients(handovers, deliveries, mails, lead.email),
        }


def _deliveries(uow: Any, lead_id: int, handovers: Sequence[Handover]) -> list[WebhookDelivery]:
    found = {d.id: d for h in handovers if h.id is not None
             for d in uow.webhooks(handover_id=h.id, limit=10_000)}
    found.update({d.id: d for d in uow.rows_of_lead(WebhookDelivery, lead_id)})
    return [found[k] for k in sorted(k for k in found if k is not None)]


def _recipients(handovers: Sequence[Handover], deliveries: Sequence[WebhookDelivery],
                mails: Sequence[MailOutbox], own: str | None) -> list[dict[str, Any]]:
    """Who received the person's data: the CRM endpoints (each delivery), the reps the lead
    was handed to, and every other address a mail about the person went to."""
    found = [{"recipient": f"webhook endpoint {d.endpoint_id}", "what": d.event_type,
              "at": _when(d.delivered_at)} for d in deliveries if d.delivered_at]
    found += [{"recipient": f"rep {h.rep_id}", "what": "handover", "at": _when(h.created_at)}
              for h in handovers if h.rep_id]
    found += [{"recipient": m.to_address, "what": m.subject, "at": _when(m.sent_at)}
              for m in mails if m.to_address != own and m.sent_at]
    return found


def erase(uow_factory: UowFactory, email: str, *, clock: Clock,
          webhooks: Sequence[WebhookEndpoint] = ()) -> dict[str, int]:
    """Erase the person (see the module's docstring); return the anonymous aggregates
    kept. ``webhooks``: the endpoints that hear ``lead.erased``."""
    address = normalise_email(email)
    now = clock()
    with uow_factory() as uow:
        lead = uow.lead_by_email(address)
        if lead is None or lead.id is None:
            raise UnknownLead(f"no lead with the address {address}")
        lead_id = lead.id
        consents = uow.rows_of_lead(ConsentRecord, lead_id)
        for record in consents:  # proof of what happened when; not who, where, what text
            record.ip = record.user_agent = record.doi_message_id = None
            record.text_shown = None
            uow.add(record)
        events = uow.rows_of_lead(Event, lead_id)
        for event in events:
            event.data = {}
            event.idempotency_key = None
            uow.add(event)
        for enrollment in uow.rows_of_lead(Enrollment, lead_id):
            if enrollment.quarantine_reason is not None:
                enrollment.quarantine_reason = "erased"  # the reason may quote its values
                uow.add(enrollment)
        handovers = uow.handovers_of(lead_id)
        uow.delete_webhooks_of([h.id for h in handovers if h.id is not None])
        uow.delete_rows_of_lead(WebhookDelivery, lead_id)
        uow.delete_rows_of_lead(MailOutbox, lead_id)
        uow.end_enrollments(lead_id, "erased", now)
        digest = address_hash(address)
        uow.forget_attempts(email_hash=digest)
        told = list(handovers)
        public_id = lead.public_id
        account_id = lead.account_id
        for name in PERSONAL:
            setattr(lead, name, None)
        lead.account_id = None
        lead.public_id = secrets.token_urlsafe(16)  # old links of the person point nowhere
        lead.status = "erased"
        lead.tracking_consent = lead.phone_consent = False
        lead.updated_at = now
        uow.add(lead)
        uow.flush()
        if account_id is not None:
            uow.forget_account_if_unused(account_id)  # a one-person company names her
        uow.suppress(digest, "erased", now)
        # The CRM hears it with the ids it has (the lead's old one and its handovers').
        crm_events.record(uow, webhooks, lead, "lead.erased", {"erased_at": now.isoformat()},
                          now, handovers=told, public_id=public_id)
        uow.commit()
    uow.scrub()  # SQLite: the WAL checkpointed and truncated, no old copy left in its files
    return {"consents": len(consents), "events": len(events), "handovers": len(handovers)}


__all__ = ["UnknownLead", "erase", "export"]
