"""Click tracking: the destination comes from the stored link table, never from the URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from engine.journeys import JourneyRuntime
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


def follow(runtime: JourneyRuntime, tokens: Tokens, token: str, *, user_agent: str | None,
           ip: str | None) -> Click:
    """Record the click (marked when a scanner made it) and return where it goes."""
    now = runtime.clock()
    token_id = tokens.loads(Purpose.CLICK, token, now=now)
    with runtime.uow() as uow:
        link = uow.tracked_link(token_id)
        if link is None:
            raise TokenInvalid("the link is not valid")
        mail = uow.outbox_by_key(link.outbox_key) if link.outbox_key else None
        sent = mail.sent_at if mail is not None else None
    agent = (user_agent or "").lower()
    scanner = any(marker in agent for marker in SCANNER_AGENTS) or \
        (sent is not None and now - sent < SCANNER_WINDOW)
    runtime.record_event(lead_id=link.lead_id, type="click", content_id=link.content_id,
                         source="mail", is_scanner=scanner,
                         data={"link": link.token_id, "kind": link.kind, "ip": ip,
                               "user_agent": user_agent})
    return Click(link.url, scanner)
