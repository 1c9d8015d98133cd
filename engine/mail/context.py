"""What a template can use: one builder for sending, previews and validation, and the schema
of it that ``ripen validate`` checks every branch of every template against
(``engine.mail.templates``), so the two cannot drift apart (a test compares them) — for a
marketing mail (``SCHEMA``), the rep's handover notice (``NOTICE_SCHEMA``) and the double
opt-in mail (``DOI_SCHEMA``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.config.content import ContentItem
from engine.config.mail import MailIdentity
from engine.config.persona import Persona

#: A field's kind in ``SCHEMA``: text, a list of texts, or a record of further fields.
#: A ``?`` marks a field that may be empty (None): guard it with ``{% if … %}``.
TEXT, TEXT_OR_NONE, LIST = "text", "text?", "list"
#: A point in time (``{{ accept_by.strftime("%d.%m.%Y") }}``), a whole number, yes or no.
TIME, NUMBER, FLAG = "time", "number", "flag"
_ITEM: dict[str, Any] = {"id": TEXT, "title": TEXT, "type": TEXT, "summary": TEXT,
                         "url": TEXT, "language": TEXT}
#: Every variable of a marketing mail, and what it holds (the marketer's guide lists them).
SCHEMA: dict[str, Any] = {
    "subject": TEXT,
    "lead": {"first_name": TEXT_OR_NONE, "last_name": TEXT_OR_NONE,
             "job_title": TEXT_OR_NONE, "company": TEXT_OR_NONE, "language": TEXT},
    "persona": {"id": TEXT, "name": TEXT, "description": TEXT, "positions": LIST,
                "industries": LIST, "regions": LIST, "pains": LIST, "desired_results": LIST,
                "objections": LIST, "keywords": LIST},
    "content": _ITEM,
    "fast_lane_offer": _ITEM,
    "fast_lane_url": TEXT,
    "unsubscribe_url": TEXT,
    "open_pixel_url": TEXT_OR_NONE,
    "imprint": TEXT,
    "sender": {"name": TEXT, "address": TEXT},
}
#: Variables that may be None as a whole (no persona fits, no fast-lane offer on the step).
OPTIONAL = ("persona", "fast_lane_offer", "open_pixel_url")
#: The variables of every marketing mail (shown in hints when a template uses another).
VARIABLES = tuple(SCHEMA)
#: A step's subject is a template too, rendered with the same variables but its own.
SUBJECT_SCHEMA = {name: kind for name, kind in SCHEMA.items() if name != "subject"}


def _item(item: ContentItem, url: str | None) -> dict[str, Any]:
    return {"id": item.id, "title": item.title, "type": item.type, "summary": item.summary,
            "url": url if url is not None else str(item.url), "language": item.language}


def persona_fields(persona: Persona) -> dict[str, Any]:
    """What a template may say about the persona (seed 000 §2.3: pains, desired results,
    objections …)."""
    return {"id": persona.id, "name": persona.name, "description": persona.description,
            "positions": list(persona.positions), "industries": list(persona.industries),
            "regions": list(persona.regions), "pains": list(persona.pains),
            "desired_results": list(persona.desired_results),
            "objections": list(persona.objections), "keywords": list(persona.keywords)}


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
        "persona": persona_fields(persona) if persona else None,
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


#: Every variable of the rep's notice of a handover (``transactional/handover_notice``).
NOTICE = "transactional/handover_notice"
NOTICE_SCHEMA: dict[str, Any] = {
    "subject": TEXT,
    "rep": {"name": TEXT},
    "lead": {"name": TEXT, "email": TEXT, "job_title": TEXT_OR_NONE, "company": TEXT_OR_NONE,
             "phone": TEXT_OR_NONE, "stage": TEXT},
    "reason": TEXT,
    "detail": TEXT,
    "grade": TEXT,
    "answer_url": TEXT,
    "timeline_url": TEXT,
    "accept_by": TIME,
    "imprint": TEXT,
}


def notice_context(*, subject: str, rep_name: str, lead: Mapping[str, Any], reason: str,
                   detail: str, grade: str, answer_url: str, timeline_url: str,
                   accept_by: datetime, imprint: str) -> dict[str, Any]:
    """``lead`` holds name, email, job_title, company, phone (None without consent to be
    called) and stage."""
    return {"subject": subject, "rep": {"name": rep_name},
            "lead": {field: lead.get(field) for field in NOTICE_SCHEMA["lead"]},
            "reason": reason, "detail": detail, "grade": grade, "answer_url": answer_url,
            "timeline_url": timeline_url, "accept_by": accept_by, "imprint": imprint}


#: Every variable of the double opt-in mail (``transactional/doi_confirm``).
DOI = "transactional/doi_confirm"
DOI_SCHEMA: dict[str, Any] = {
    "subject": TEXT,
    "update": FLAG,
    "lead": {"language": TEXT, "first_name": TEXT_OR_NONE},
    "confirm_url": TEXT,
    "valid_days": NUMBER,
    "imprint": TEXT,
}


def doi_context(*, subject: str, update: bool, language: str, first_name: str | None,
                confirm_url: str, valid_days: int, imprint: str) -> dict[str, Any]:
    return {"subject": subject, "update": update,
            "lead": {"language": language, "first_name": first_name},
            "confirm_url": confirm_url, "valid_days": valid_days, "imprint": imprint}
