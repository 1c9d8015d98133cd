"""The mail outbox sender: claim due rows with a lease, check again, send, record.

A mail is decided and rendered in the transaction that changed the lead's state; this
sender only performs it. Nothing is lost (a row stays until it is sent, failed or marked
unknown) and nothing goes out twice (claims use leases; a row whose DATA began before a
crash becomes ``unknown`` and is shown to the operator instead of being resent).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.adapters.mailers import Mailer, Outcome, Result
from engine.addresses import address_hash
from engine.clock import Clock
from engine.mail.message import HeaderInjection, OutgoingMail, UnsendableAddress, ascii_address
from engine.store.tables import ConsentRecord, Lead, MailOutbox
from engine.store.uow import UnitOfWork, UowFactory

#: Waits between attempts after a temporary failure (then it stays `retry` at the last one).
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
           timedelta(hours=2), timedelta(hours=6))
MAX_ATTEMPTS = 12
LEASE = timedelta(minutes=5)
#: Suppression reasons that stop even transactional mail (DOI) to an address.
HARD_SUPPRESSIONS = ("hard_bounce", "soft_bounces", "complaint", "manual")


@dataclass(frozen=True)
class Sender:
    name: str
    address: str
    reply_to: str | None = None


def deliver(uow_factory: UowFactory, mailer: Mailer, sender: Sender, *, clock: Clock,
            ids: Sequence[int] | None = None, limit: int = 500) -> Counter[str]:
    """Send due outbox rows (or just ``ids``); return how many ended in each state."""
    owner = secrets.token_hex(8)
    counts: Counter[str] = Counter()
    recover_expired(uow_factory, now=clock(), counts=counts)
    with uow_factory() as uow:
        rows = uow.claim_mail(now=clock(), owner=owner, lease_until=clock() + LEASE,
                              limit=limit, ids=ids)
        uow.commit()
    for row in rows:
        counts[_deliver_one(uow_factory, mailer, sender, row, clock)] += 1
    return counts


def recover_expired(uow_factory: UowFactory, *, now: datetime, counts: Counter[str]) -> None:
    """Rows left `sending` by a crashed sender: resend only if DATA never began."""
    with uow_factory() as uow:
        for row in uow.expired_sending(now, limit=1000):
            row.lease_owner = row.lease_until = None
            if row.data_started_at is None:
                row.status = "retry"
                counts["recovered"] += 1
            else:
                row.status = "unknown"
                row.last_error = "sender stopped after DATA began; not resent"
                counts["unknown"] += 1
            uow.add(row)
        uow.commit()


def _deliver_one(uow_factory: UowFactory, mailer: Mailer, sender: Sender, row: MailOutbox,
                 clock: Clock) -> str:
    assert row.id is not None
    with uow_factory() as uow:
        blocked = _blocked(uow, row, clock())
        if blocked is not None:
            current = uow.outbox_row(row.id)
            assert current is not None
            current.status, current.last_error, current.next_attempt_at = blocked
            current.lease_owner = current.lease_until = None
            uow.add(current)
            uow.commit()
            return "deferred" if current.next_attempt_at else current.status
    try:
        message = OutgoingMail(
            to=row.to_address or "", subject=row.subject, html=row.body_html,
            text=row.body_text, message_id=row.message_id, sender_name=sender.name,
            sender_address=sender.address, reply_to=sender.reply_to, date=row.created_at,
            headers=row.headers).to_bytes()
    except (HeaderInjection, UnsendableAddress) as exc:
        return _record(uow_factory, row.id, Result(Outcome.FAILED, None, str(exc)), clock())

    data_began = False

    def before_data() -> None:
        nonlocal data_began
        with uow_factory() as uow:
            current = uow.outbox_row(row.id)  # type: ignore[arg-type]
            assert current is not None
            current.data_started_at = clock()
            uow.add(current)
            uow.commit()
        data_began = True

    try:
        result = mailer.send(ascii_address(sender.address), ascii_address(row.to_address or ""),
                             message, before_data)
    except Exception as exc:  # a broken transport must not lose or double the mail
        outcome = Outcome.UNKNOWN if data_began else Outcome.RETRY
        result = Result(outcome, None, f"{type(exc).__name__}: {exc}")
    return _record(uow_factory, row.id, result, clock())


Blocked = tuple[str, str, datetime | None]


def _blocked(uow: UnitOfWork, row: MailOutbox, now: datetime) -> Blocked | None:
    """Checked again right before submission: suppression, consent, pause.

    Returns the row's new status, the reason, and when to try again (a pause defers).
    """
    if not row.to_address:
        return "suppressed", "no address (erased)", None
    suppressed = uow.suppression(address_hash(row.to_address))
    lead = uow.session.get(Lead, row.lead_id) if row.lead_id is not None else None
    if row.kind == "marketing":
        if suppressed is not None:
            return "suppressed", f"address suppressed ({suppressed.reason})", None
        if lead is None or lead.status != "confirmed":
            return "suppressed", "no confirmed opt-in", None
        if lead.mail_paused_until is not None and lead.mail_paused_until > now:
            return "pending", "lead paused mail", lead.mail_paused_until
        return None
    if suppressed is not None and suppressed.reason in HARD_SUPPRESSIONS:
        return "suppressed", f"address suppressed ({suppressed.reason})", None
    if row.category in ("doi", "doi_reminder") and lead is not None and \
            lead.status == "confirmed":
        return "suppressed", "already confirmed", None
    return None


def _record(uow_factory: UowFactory, row_id: int, result: Result, now: datetime) -> str:
    with uow_factory() as uow:
        row = uow.outbox_row(row_id)
        assert row is not None
        row.lease_owner = row.lease_until = None
        row.attempts += 1
        row.last_error = None if result.outcome is Outcome.SENT else \
            f"{result.code or ''} {result.detail}".strip()[:1000]
        if result.outcome is Outcome.SENT:
            row.status, row.sent_at = "sent", now
            if row.category in ("doi", "doi_reminder") and row.lead_id is not None:
                uow.add(ConsentRecord(lead_id=row.lead_id, purpose="email_marketing",
                                      action="doi_sent", doi_message_id=row.message_id,
                                      doi_sent_at=now, occurred_at=now))
        elif result.outcome is Outcome.RETRY and row.attempts < MAX_ATTEMPTS:
            row.status = "retry"
            row.next_attempt_at = now + BACKOFF[min(row.attempts, len(BACKOFF)) - 1]
            row.data_started_at = None
        elif result.outcome is Outcome.UNKNOWN:
            row.status = "unknown"
        else:
            row.status = "failed"
            if result.hard_bounce and row.to_address:
                uow.suppress(address_hash(row.to_address), "hard_bounce", now)
        uow.add(row)
        uow.commit()
        return row.status
