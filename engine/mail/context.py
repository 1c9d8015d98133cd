"""What a marketing template can use: one builder for sending, previews and validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.config.content import ContentItem
from engine.config.mail import MailIdentity
from engine.config.persona import Persona

#: The variables of every marketing mail (shown in hints when a template uses another).
VARIABLES = ("subject", "lead", "persona", "content", "fast_lane_offer", "fast_lane_url",
             "unsubscribe_url", "open_pixel_url", "imprint", "sender")


def _item(item: ContentItem, url: str | None) -> dict[str, Any]:
    return {"id": item.id, "title": item.title, "type": item.type, "summary": item.summary,
            "url": url if url is not None else str(item.url), "language": item.language}


def marketing_context(*, subject: str, lead: Mapping[str, Any], persona: Persona | None,
                      content: ContentItem, fast_lane_offer: ContentItem | None,
                      fast_lane_url: str, unsubscribe_url: str,
                      identity: MailIdentity, open_pixel_url: str | None = None,
                      content_url: str | None = None,
                      fast_lane_offer_url: str | None = None) -> dict[str, Any]:
    """``open_pixel_url`` is None unless the lead consented to tracking; ``content_url`` and
    ``fast_lane_offer_url`` are the tracked links in a sent mail (previews show the items'
    own addresses)."""
    return {
        "subject": subject,
        "lead": {"first_name": lead.get("first_name"), "last_name": lead.get("last_name"),
                 "job_title": lead.get("job_title"), "company": lead.get("company"),
                 "language": lead.get("language") or "de"},
        "persona": {"id": persona.id, "name": persona.name} if persona else None,
        "content": _item(content, content_url),
        "fast_lane_offer": _item(fast_lane_offer, fast_lane_offer_url) if fast_lane_offer
        else None,
        "fast_lane_url": fast_lane_url,
        "unsubscribe_url": unsubscribe_url,
        "open_pixel_url": open_pixel_url,
        "imprint": identity.imprint,
        "sender": {"name": identity.sender.name, "address": str(identity.sender.address)},
    }


def sample_lead(persona: Persona | None) -> dict[str, Any]:
    """A plausible lead of the persona, for previews and validation."""
    title = persona.positions[0] if persona else "Geschäftsführer"
    return {"first_name": "Erika", "last_name": "Beispiel", "job_title": title,
            "company": "Beispiel GmbH", "language": "de"}
