"""What a CRM that received a lead hears about it afterwards: the lead unsubscribed, a consent
was withdrawn, the person was erased — signed Standard Webhooks, written to the same outbox
as handovers (retries, ``Retry-After``, dead letter, replay).

Only endpoints subscribed to the event (``events`` in ``config/sla.yaml``) hear of it, and
only about leads that were handed over: the CRM has a copy of those, and nobody else's
unsubscribe is its business. ``lead.erased`` carries nothing but the ids the CRM already has
(the lead's and its handovers'), so the CRM can find and delete its own copy.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine.config.sla import WebhookEndpoint
from engine.store.tables import Handover, Lead, WebhookDelivery
from engine.store.uow import UnitOfWork

LEAD_EVENTS = ("lead.unsubscribed", "consent.withdrawn", "lead.erased")


def record(uow: UnitOfWork, endpoints: Sequence[WebhookEndpoint], lead: Lead,
           event_type: str, data: dict[str, Any], now: datetime, *,
           handovers: Sequence[Handover] | None = None, lead_id: int | None = None,
           public_id: str | None = None) -> int:
    """One delivery per endpoint subscribed to ``event_type``, if the lead was handed over;
    how many were written. ``lead_id`` ties them to the lead (their payloads go with its
    erasure); ``lead.erased`` is written untied, after the erasure, with the lead's old
    ``public_id`` (the one the CRM knows)."""
    assert event_type in LEAD_EVENTS
    subscribed = [e for e in endpoints if event_type in e.events]
    if not subscribed or lead.id is None:
        return 0
    handed = list(handovers) if handovers is not None else list(uow.handovers_of(lead.id))
    if not handed:
        return 0
    body = json.dumps({"type": event_type, "timestamp": now.isoformat(),
                       "data": {"lead": public_id or lead.public_id,
                                "handovers": [h.public_id for h in handed], **data}},
                      ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for endpoint in subscribed:
        uow.add(WebhookDelivery(webhook_id=f"msg_{secrets.token_urlsafe(18)}",
                                endpoint_id=endpoint.id, event_type=event_type,
                                lead_id=lead_id, payload=body, next_attempt_at=now,
                                created_at=now))
    return len(subscribed)


__all__ = ["LEAD_EVENTS", "record"]
