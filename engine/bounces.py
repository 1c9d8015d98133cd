"""Asynchronous bounces and complaints: RFC 3464 delivery reports, RFC 5965 (ARF) feedback
reports, and the JSON an ESP or relay posts to ``/api/bounces``.

A hard bounce or a complaint suppresses the address at once; soft bounces (mailbox full,
delayed) suppress it after ``mail.bounces.soft_limit`` within ``window``. Every report is
recorded once (its key is derived from the report), so reading the same Maildir twice
changes nothing. The original mail is found by its Message-ID when the report carries it,
otherwise by the recipient address.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import HeaderParser
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path

from engine import crm_events
from engine.addresses import address_hash
from engine.clock import Clock
from engine.config.mail import Bounces
from engine.config.sla import WebhookEndpoint
from engine.consent import close_requests
from engine.consent_states import Request, move
from engine.errors import RipenError
from engine.store.tables import ConsentRecord, Event, Lead
from engine.store.uow import UnitOfWork, UowFactory


class BounceKind(StrEnum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


#: Event types recorded for each kind (the funnel report counts them per journey/content).
EVENT_TYPES = {BounceKind.HARD: "bounce_hard", BounceKind.SOFT: "bounce_soft",
               BounceKind.COMPLAINT: "complaint"}
#: ARF feedback types that mean "the recipient does not want this mail".
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
#: Permanent failures that are about the mailbox being full, not gone: counted as soft.
SOFT_PERMANENT = ("5.2.2",)


@dataclass(frozen=True)
class Bounce:
    kind: BounceKind
    email: str | None          # the recipient, when the report names it
    message_id: str | None     # the Message-ID of our mail, when the report carries it
    status: str | None         # enhanced status code such as 5.1.1
    detail: str
    key: str                   # idempotency key: the same report is recorded once
    occurred_at: datetime | None = None


class NotAReport(ValueError):
    """The mail is neither a delivery-status nor a feedback report (e.g. an auto-reply)."""


def parse_report(raw: bytes) -> list[Bounce]:
    """The bounces in one report mail; raises ``NotAReport`` with the reason."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report":
        raise NotAReport(f"not a multipart/report but {message.get_content_type()}")
    report_type = (message.get_param("report-type") or "")
    report_id = _clean_id(message.get("Message-ID")) or hashlib.sha256(raw).hexdigest()[:32]
    parts = _messages(message.get_payload())
    original = _original_headers(parts)
    if str(report_type).lower() == "delivery-status":
        return _delivery_status(parts, original, report_id)
    if str(report_type).lower() == "feedback-report":
        return _feedback(parts, original, report_id)
    raise NotAReport(f"unsupported report-type {report_type!r}")


def _delivery_status(parts: list[Message], original: Message | None,
                     report_id: str) -> list[Bounce]:
    status_part = next((p for p in parts if p.get_content_type() == "message/delivery-status"),
                       None)
    if status_part is None:
        raise NotAReport("delivery report without a message/delivery-status part")
    payload = status_part.get_payload()
    if isinstance(payload, str):  # some MTAs send it as text; parse the blocks ourselves
        blocks = [HeaderParser().parsestr(b) for b in re.split(r"\r?\n\r?\n", payload)
                  if b.strip()]
    else:
        blocks = _messages(payload)
    if not blocks:
        raise NotAReport("empty message/delivery-status part")
    message_id = _clean_id(original.get("Message-ID")) if original is not None else None
    found = []
    for block in blocks[1:]:  # the first block is per-message, the rest per recipient
        action = (block.get("Action") or "").strip().lower()
        status = (block.get("Status") or "").strip().split(" ")[0] or None
        recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        if action not in ("failed", "delayed"):
            continue  # delivered / relayed / expanded: nothing wrong
        hard = action == "failed" and (status or "5").startswith("5") and \
            not (status or "").startswith(SOFT_PERMANENT)
        detail = " ".join((block.get("Diagnostic-Code") or action).split())[:500]
        found.append(Bounce(
            kind=BounceKind.HARD if hard else BounceKind.SOFT, email=recipient,
            message_id=message_id, status=status, detail=detail,
            key=f"dsn:{report_id}:{recipient or '-'}", occurred_at=_date(block.get(
                "Last-Attempt-Date") or blocks[0].get("Arrival-Date"))))
    if not found:
        raise NotAReport("delivery report without a failed or delayed recipient")
    return found


def _feedback(parts: list[Message], original: Message | None, report_id: str) -> list[Bounce]:
    part = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
    if part is None:
        raise NotAReport("feedback report without a message/feedback-report part")
    payload = part.get_payload()
    fields = (_messages(payload) or [Message()])[0] if isinstance(payload, list) else \
        HeaderParser().parsestr(str(payload))
    feedback_type = (fields.get("Feedback-Type") or "").strip().lower()
    if feedback_type not in COMPLAINT_TYPES:
        raise NotAReport(f"feedback type {feedback_type or 'missing'!r} is not a complaint")
    recipient = _address(fields.get("Original-Rcpt-To")) or \
        (_address(original.get("To")) if original is not None else None)
    message_id = _clean_id(original.get("Message-ID")) if original is not None else None
    return [Bounce(kind=BounceKind.COMPLAINT, email=recipient, message_id=message_id,
                   status=None, detail=f"feedback report: {feedback_type}",
                   key=f"arf:{report_id}", occurred_at=_date(fields.get("Arrival-Date")))]


def _original_headers(parts: list[Message]) -> Message | None:
    for part in parts:
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = _messages(part.get_payload())
            if inner:
                return inner[0]
        if kind == "text/rfc822-headers":
            return HeaderParser().parsestr(str(part.get_payload(decode=False)))
    return None


def _messages(payload: object) -> list[Message]:
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _address(field: str | None) -> str | None:
    """``rfc822; Anna@Example.com`` → ``anna@example.com``."""
    if not field:
        return None
    value = field.split(";", 1)[-1].strip().strip("<>").strip()
    return value.lower() if "@" in value and len(value) <= 320 else None


def _clean_id(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if value.startswith("<") and value.endswith(">") and len(value) <= 255 \
        else None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else None


# --- applying ----------------------------------------------------------------------------

def apply_bounces(uow_factory: UowFactory, bounces: Iterable[Bounce], *, rules: Bounces,
                  clock: Clock, webhooks: Sequence[WebhookEndpoint] = ()) -> Counter[str]:
    """Record each bounce once and suppress as the rules say; counts what happened. A
    complaint about a lead that was handed over is a ``consent.withdrawn`` for the CRMs
    among ``webhooks`` subscribed to it."""
    counts: Counter[str] = Counter()
    now = clock()
    for bounce in bounces:
        with uow_factory() as uow:
            if uow.event_by_key(bounce.key) is not None:
                counts["duplicate"] += 1
                continue
            lead: Lead | None = None
            address = bounce.email
            row = uow.outbox_by_message_id(bounce.message_id) if bounce.message_id else None
            if row is not None and row.to_address:
                # Our own record of where the mail went wins: complaint reports redact or
                # rewrite the recipient, and forwarding changes the final one.
                address = row.to_address
                lead = uow.session.get(Lead, row.lead_id) if row.lead_id is not None else None
                if lead is not None and lead.email != address:
                    lead = None  # a mail about the lead to someone else (a rep's notice)
            if lead is None and address:
                lead = uow.lead_by_email(address)
            if address is None and lead is not None:
                address = lead.email
            if address is None:
                counts["unknown"] += 1
                continue
            counts[bounce.kind.value] += 1
            when = bounce.occurred_at or now
            if lead is not None and lead.id is not None:
                uow.add(Event(lead_id=lead.id, type=EVENT_TYPES[bounce.kind],
                              idempotency_key=bounce.key, source="bounce",
                              data={"status": bounce.status, "detail": bounce.detail,
                                    "message_id": bounce.message_id,
                                    "journey": row.idempotency_key if row else None},
                              occurred_at=when, recorded_at=now))
                uow.flush()
            reason = {BounceKind.HARD: "hard_bounce", BounceKind.COMPLAINT: "complaint"}.get(
                bounce.kind)
            if reason is None and lead is not None and lead.id is not None:
                recent = [e for e in uow.events_since(lead.id, now - rules.window)
                          if e.type == EVENT_TYPES[BounceKind.SOFT]]
                if len(recent) >= rules.soft_limit:
                    reason = "soft_bounces"
            if reason is not None:
                counts["suppressed"] += 1
                uow.suppress(address_hash(address), reason, now)
                if lead is not None and lead.id is not None:
                    _stop(uow, lead, reason, now, webhooks)
            uow.commit()
    return counts


def _stop(uow: UnitOfWork, lead: Lead, reason: str, now: datetime,
          webhooks: Sequence[WebhookEndpoint]) -> None:
    """No more marketing mail: the lead leaves its journeys; queued mail is cancelled."""
    assert lead.id is not None
    if reason == "complaint" and lead.status == "confirmed":
        # A spam complaint is a withdrawal of consent; the ledger says so, and the CRM hears.
        uow.add(ConsentRecord(lead_id=lead.id, purpose="email_marketing", action="withdrawn",
                              method="complaint", occurred_at=now))
        crm_events.record(uow, webhooks, lead, "consent.withdrawn",
                          {"email": lead.email, "method": "complaint",
                           "purposes": ["email_marketing"], "at": now.isoformat()}, now,
                          lead_id=lead.id)
    to = move(lead.status, Request.COMPLAINT if reason == "complaint" else Request.BOUNCE)
    if to is not None:
        lead.status = to
    close_requests(lead)  # an old confirmation link must not undo this
    lead.updated_at = now
    uow.add(lead)
    uow.cancel_marketing_mail(lead.id, reason)
    uow.end_enrollments(lead.id, reason, now)


# --- reading report mails ----------------------------------------------------------------

MAX_REPORT_BYTES = 10 * 1024 * 1024


@dataclass
class IngestSummary:
    counts: Counter[str]
    files: int
    skipped: list[tuple[str, str]]  # (file name, why it is not a report)


def report_files(path: Path) -> list[Path]:
    """A single file, a Maildir (``new/`` then ``cur/``), or a folder of ``.eml`` files."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RipenError(f"{path}: no such file or folder")
    if (path / "new").is_dir() and (path / "cur").is_dir():
        folders = [path / "new", path / "cur"]
    else:
        folders = [path]
    return sorted((f for folder in folders for f in folder.iterdir()
                   if f.is_file() and not f.name.startswith(".")),
                  key=lambda f: (f.parent.name != "new", f.name))


def ingest(path: Path, uow_factory: UowFactory, *, rules: Bounces, clock: Clock,
           webhooks: Sequence[WebhookEndpoint] = ()) -> IngestSummary:
    """Read report mails and apply them; Maildir mail moves from ``new/`` to ``cur/``."""
    files = report_files(path)
    summary = IngestSummary(Counter(), len(files), [])
    for file in files:
        if file.stat().st_size > MAX_REPORT_BYTES:
            summary.skipped.append((file.name, "larger than 10 MB"))
            continue
        try:
            bounces = parse_report(file.read_bytes())
        except NotAReport as exc:
            summary.skipped.append((file.name, str(exc)))
            bounces = []
        summary.counts.update(apply_bounces(uow_factory, bounces, rules=rules, clock=clock,
                                            webhooks=webhooks))
        if file.parent.name == "new" and (file.parent.parent / "cur").is_dir():
            name = file.name if ":2," in file.name else f"{file.name}:2,S"
            file.rename(file.parent.parent / "cur" / name)  # seen, as a mail client would
    return summary
