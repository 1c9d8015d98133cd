"""Click and open tracking: the destination comes from the stored link table, never from the URL.

Opens are recorded only for leads whose tracking consent allows it (checked when the mail is
rendered and again when the pixel is fetched), at most once per mail, and weigh little
(``scoring.implicit.events.open``); an open never moves a lead to another stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.journeys import JourneyRuntime
from engine.store.engagement import open_key
from engine.store.tables import Lead, TrackedLink
from engine.store.uow import UnitOfWork
from engine.tokens import Purpose, TokenInvalid, Tokens

#: User agents of mail-security scanners and link pre-fetchers (clicks they make do not count).
SCANNER_AGENTS = ("barracuda", "proofpoint", "mimecast", "safelinks", "microsoft office",
                  "ms-office", "googleimageproxy", "trendmicro", "symantec", "bitdefender",
                  "python-requests", "curl/", "wget/", "headlesschrome/", "bot", "crawler",
                  "spider", "preview")
#: A click this soon after sending is a machine, not a person reading.
SCANNER_WINDOW = timedelta(seconds=10)


@dataclass(frozen=True)
class Click:
    url: str
    is_scanner: bool
    handover_id: int | None = None  # fast-lane content hands the lead to sales at once


class LinkGone(TokenInvalid):
    """A genuine link whose destination retention has purged (an old mail's link)."""


def follow(runtime: JourneyRuntime, tokens: Tokens, token: str, *, user_agent: str | None,
           ip: str | None, record: bool = True) -> Click:
    """Record the click (marked when a scanner made it) and return where it goes; the link
    of an erased person (or with ``record`` False: a link checker's HEAD) leads to its
    content and records nothing."""
    now = runtime.clock()
    token_id = tokens.loads(Purpose.CLICK, token, now=now)
    with runtime.uow() as uow:
        link = uow.tracked_link(token_id)
        if link is None:
            raise LinkGone("the link's destination was purged (retention.click_links)")
        if link.kind == "open":
            raise TokenInvalid("the link is not valid")
        lead = uow.session.get(Lead, link.lead_id)
        if not record or lead is None or lead.status == "erased":
            return Click(link.url, False, None)  # the content, and nothing recorded
        too_soon = _within_scanner_window(uow, link, now)
    agent = (user_agent or "").lower()
    scanner = any(marker in agent for marker in SCANNER_AGENTS) or too_soon
    recorded = runtime.record_event(lead_id=link.lead_id, type="click",
                                    content_id=link.content_id, source="mail",
                                    is_scanner=scanner,
                                    data={"link": link.token_id, "kind": link.kind, "ip": ip,
                                          "user_agent": user_agent})
    return Click(link.url, scanner, recorded.handover_id if recorded else None)


def contact_request(runtime: JourneyRuntime, tokens: Tokens, token: str, *,
                    ip: str | None) -> int | None:
    """The fast lane's "talk to an expert" (POST behind the mail's link): the lead goes to
    sales at once, whatever its score. Returns the new handover's id (None when the lead
    is already with sales or the request was already made). Raises ``TokenInvalid``."""
    public_id = tokens.loads(Purpose.FAST_LANE, token, now=runtime.clock())
    with runtime.uow() as uow:
        lead = uow.lead_by_public_id(public_id)
    if lead is None or lead.id is None:
        raise TokenInvalid("the link is not valid")
    recorded = runtime.record_event(lead_id=lead.id, type="contact_request",
                                    source="fast_lane", data={"ip": ip},
                                    idempotency_key=f"fast-lane:{token[-43:]}")
    return recorded.handover_id if recorded else None


def opened(runtime: JourneyRuntime, tokens: Tokens, token: str, *,
           user_agent: str | None) -> bool:
    """Record an open of the mail behind an open-pixel token; False when not recorded."""
    now = runtime.clock()
    token_id = tokens.loads(Purpose.OPEN, token, now=now)
    with runtime.uow() as uow:
        link = uow.tracked_link(token_id)
        if link is None or link.kind != "open":
            raise TokenInvalid("the link is not valid")
        lead = uow.session.get(Lead, link.lead_id)
        if lead is None or not lead.tracking_consent:
            return False  # consent withdrawn since the mail went out: not recorded
        # Image proxies (Gmail) fetch for real readers: only the delivery window marks a machine.
        scanner = _within_scanner_window(uow, link, now)
    event = runtime.record_event(lead_id=link.lead_id, type="open", content_id=link.content_id,
                                 source="mail", is_scanner=scanner,
                                 idempotency_key=open_key(link.token_id),
                                 data={"user_agent": user_agent})
    return event is not None


def _within_scanner_window(uow: UnitOfWork, link: TrackedLink, now: datetime) -> bool:
    """Fetched within seconds of the mail's delivery: a machine, not a person reading."""
    mail = uow.outbox_by_key(link.outbox_key) if link.outbox_key else None
    return mail is not None and mail.sent_at is not None and now - mail.sent_at < SCANNER_WINDOW
