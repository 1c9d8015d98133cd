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

from engine.adapters.mailers import Mailer, Outcome, Result, Submission
from engine.addresses import address_hash
from engine.clock import Clock
from engine.errors import RipenError
from engine.mail.message import HeaderInjection, OutgoingMail, UnsendableAddress, ascii_address
from engine.store.mailqueue import Claimed, LeadState
from engine.store.tables import ConsentRecord, MailOutbox
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
            ids: Sequence[int] | None = None, limit: int = 500,
            max_rows: int = 100_000, lease: timedelta = LEASE) -> Counter[str]:
    """Send due outbox rows (or just ``ids``, all of them, ``limit`` at a time) until none
    is due; count each end state.

    Batches of ``limit`` rows are claimed and checked in one transaction each; then they go
    out in rounds of ``mailer.lanes`` mails (one per SMTP connection), and every round costs
    one commit: the mark that its mails' DATA begins, together with the results of the
    round before. A crash therefore leaves at most one round's mails ``unknown`` — those
    whose DATA had begun — and never resends them. A sender that dies holds its rows for
    ``lease``; then the next sender takes them over.
    """
    owner = secrets.token_hex(8)
    counts: Counter[str] = Counter()
    recover_expired(uow_factory, now=clock(), counts=counts)
    done = 0
    waiting = list(ids) if ids is not None else None
    while done < max_rows:
        chunk = None
        if waiting is not None:
            if not waiting:
                break
            chunk, waiting = waiting[:limit], waiting[limit:]
        with uow_factory() as uow:
            rows = uow.claim_mail(now=clock(), owner=owner, lease_until=clock() + lease,
                                  limit=min(limit, max_rows - done), ids=chunk)
            blocked = _blocked_rows(uow, rows, clock())
            uow.record_outbox({"id": row_id, "status": status, "last_error": reason,
                               "next_attempt_at": retry_at, "lease_owner": None,
                               "lease_until": None}
                              for row_id, (status, reason, retry_at) in blocked.items())
            uow.commit()
        for status, _, retry_at in blocked.values():
            counts["deferred" if retry_at else status] += 1
        _send_batch(uow_factory, mailer, sender,
                    [row for row in rows if row.id not in blocked], clock, counts, owner,
                    lease)
        done += len(rows)
        if waiting is None and len(rows) < limit:
            break
    return counts


def send_claimed(uow_factory: UowFactory, mailer: Mailer, sender: Sender,
                 rows: Sequence[Claimed], *, clock: Clock, owner: str,
                 lease: timedelta = LEASE) -> Counter[str]:
    """Send rows written already leased to ``owner`` (a journey step's mails, handed over
    right after the transaction that decided them, which also checked consent, pause and
    suppression). A crash before sending leaves them to the next sender after ``lease``."""
    counts: Counter[str] = Counter()
    _send_batch(uow_factory, mailer, sender, list(rows), clock, counts, owner, lease)
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


def _send_batch(uow_factory: UowFactory, mailer: Mailer, sender: Sender,
                rows: list[Claimed], clock: Clock, counts: Counter[str],
                owner: str, lease: timedelta) -> None:
    """Send ``rows`` in rounds of ``mailer.lanes``; one commit per round (see deliver).

    The DATA marks renew the lease on the rest of the batch (every quarter lease), so a
    live sender keeps its rows however slow the relay; a row whose lease still ran out (a
    round held up that long) belongs to whoever recovered it and is skipped here."""
    unrecorded: list[tuple[Claimed, Result]] = []
    renewed_at = clock()  # the claim just set the batch's lease
    envelope_from = ascii_address(sender.address)
    with uow_factory() as uow:

        def record_all() -> None:
            now = clock()
            changes = []
            for done_row, done_result in unrecorded:
                change = _result(uow, done_row, done_result, now)
                counts[str(change["status"])] += 1
                changes.append(change)
            uow.record_outbox(changes)
            unrecorded.clear()

        ready: list[tuple[Claimed, Submission]] = []
        for row in rows:
            if row.body_html is None or row.body_text is None:
                unrecorded.append((row, Result(Outcome.FAILED, None, BODY_GONE)))
                continue
            try:
                message = OutgoingMail(
                    to=row.to_address or "", subject=row.subject, html=row.body_html,
                    text=row.body_text, message_id=row.message_id, sender_name=sender.name,
                    sender_address=sender.address, reply_to=sender.reply_to,
                    date=row.created_at, headers=row.headers).to_bytes()
                ready.append((row, Submission(envelope_from, ascii_address(row.to_address or ""),
                                              message)))
            except (HeaderInjection, UnsendableAddress) as exc:
                unrecorded.append((row, Result(Outcome.FAILED, None, str(exc))))
        for start in range(0, len(ready), mailer.lanes):
            round_ = ready[start:start + mailer.lanes]
            began: set[int] = set()

            def before_data(positions: Sequence[int],
                            round_: list[tuple[Claimed, Submission]] = round_,
                            began: set[int] = began) -> list[int]:
                nonlocal renewed_at
                now = clock()
                # the batch's lease is renewed a few times per lease, not with every round
                # (that would rewrite the whole batch per round)
                renew = now - renewed_at >= lease / 4
                try:
                    record_all()
                    owned = uow.mark_data_started([round_[p][0].id for p in positions],
                                                  owner=owner, now=now,
                                                  lease_until=now + lease, renew_batch=renew)
                    uow.commit()
                except Exception as exc:
                    raise _StoreFailed(exc) from exc
                if renew:
                    renewed_at = now
                allowed = [p for p in positions if round_[p][0].id in owned]
                began.update(allowed)
                return allowed

            try:
                results = mailer.send_round([mail for _, mail in round_], before_data)
            except _StoreFailed as failed:
                # the database is gone: stop; after the lease the rows come back, each
                # mail whose DATA mark had committed as `unknown`, the rest to be sent
                mailer.close()
                raise failed.error from None
            except Exception as exc:  # a broken transport must not lose or double the mail
                mailer.close()
                results = [Result(Outcome.UNKNOWN if p in began else Outcome.RETRY, None,
                                  f"{type(exc).__name__}: {exc}") for p in range(len(round_))]
            for (row, _), result in zip(round_, results, strict=True):
                if result is None:
                    counts["lease_lost"] += 1  # taken over by another sender: not ours
                else:
                    unrecorded.append((row, result))
            if _unreachable(results):
                # no connection of the round reached the relay: the rest of the batch
                # waits for its backoff instead of timing out round after round
                unrecorded.extend((row, Result(Outcome.RETRY, None, UNREACHABLE))
                                  for row, _ in ready[start + mailer.lanes:])
                break
        record_all()
        uow.commit()


BODY_GONE = "not sent: its rendered body is gone (mail_body row missing)"
UNREACHABLE = "not tried: the relay could not be reached in this batch"


def _unreachable(results: Sequence[Result | None]) -> bool:
    """Every mail of the round failed before the relay answered anything (refused, timed
    out, gone) — a relay refusing a mail (4xx/5xx) still answered."""
    return bool(results) and all(r is not None and r.outcome is Outcome.RETRY
                                 and r.code is None and r.detail.startswith("before DATA")
                                 for r in results)


class _StoreFailed(Exception):
    """Recording results or a DATA mark failed: the round must not go on."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


Blocked = tuple[str, str, datetime | None]


def _blocked_rows(uow: UnitOfWork, rows: Sequence[Claimed],
                  now: datetime) -> dict[int, Blocked]:
    """Checked again right before submission, for a whole batch at once: suppression,
    consent, pause. Maps row id → (new status, reason, when to try again)."""
    suppressed = uow.suppressions_of(address_hash(r.to_address) for r in rows if r.to_address)
    leads = uow.lead_states(r.lead_id for r in rows if r.lead_id is not None)
    found = {}
    for row in rows:
        reason = _blocked(row, suppressed.get(address_hash(row.to_address))
                          if row.to_address else None,
                          leads.get(row.lead_id) if row.lead_id is not None else None, now)
        if reason is not None:
            found[row.id] = reason
    return found


def _blocked(row: Claimed, suppressed: str | None, lead: LeadState | None,
             now: datetime) -> Blocked | None:
    if not row.to_address:
        return "suppressed", "no address (erased)", None
    if row.kind == "marketing":
        if suppressed is not None:
            return "suppressed", f"address suppressed ({suppressed})", None
        if lead is None or lead.status != "confirmed":
            return "suppressed", "no confirmed opt-in", None
        if lead.mail_paused_until is not None and lead.mail_paused_until > now:
            return "pending", "lead paused mail", lead.mail_paused_until
        return None
    if suppressed is not None and suppressed in HARD_SUPPRESSIONS:
        return "suppressed", f"address suppressed ({suppressed})", None
    if row.category in ("doi", "doi_reminder") and lead is not None and \
            lead.status == "confirmed":
        return "suppressed", "already confirmed", None
    return None


def _result(uow: UnitOfWork, row: Claimed, result: Result, now: datetime) -> dict[str, object]:
    """The row's columns after one attempt (nobody else touches a leased row; ``attempts``
    is the count after it — the store counts it up); a sent DOI mail adds to the consent
    proof, a hard bounce suppresses the address."""
    attempts = row.attempts + 1
    values: dict[str, object] = {
        "id": row.id, "lease_owner": None, "lease_until": None, "attempts": attempts,
        "last_error": None if result.outcome is Outcome.SENT else
        f"{result.code or ''} {result.detail}".strip()[:1000]}
    if result.outcome is Outcome.SENT:
        values.update(status="sent", sent_at=now)
        if row.category in ("doi", "doi_reminder", "doi_update") and \
                row.lead_id is not None:
            uow.add(ConsentRecord(lead_id=row.lead_id, purpose="email_marketing",
                                  action="doi_sent", doi_message_id=row.message_id,
                                  doi_sent_at=now, occurred_at=now))
    elif result.outcome is Outcome.RETRY and attempts < MAX_ATTEMPTS:
        values.update(status="retry", data_started_at=None,
                      next_attempt_at=now + BACKOFF[min(attempts, len(BACKOFF)) - 1])
    elif result.outcome is Outcome.UNKNOWN:
        values.update(status="unknown")
    else:
        values.update(status="failed")
        if result.hard_bounce and row.to_address:
            uow.suppress(address_hash(row.to_address), "hard_bounce", now)
    return values


class NotUnknown(RipenError):
    """Only a mail left ``unknown`` can be settled by hand."""


def settle_unknown(uow_factory: UowFactory, row_id: int, *, sent: bool,
                   now: datetime) -> MailOutbox:
    """The operator's decision on a mail whose DATA began before a crash, after checking
    the relay's log for its Message-ID: it was ``sent``, or it is queued to go out again."""
    with uow_factory() as uow:
        row = uow.outbox_row(row_id)
        if row is None or row.status != "unknown":
            raise NotUnknown(f"outbox row {row_id} is "
                             + (f"{row.status}, not unknown" if row else "not there"))
        if sent:
            row.status, row.sent_at = "sent", now
            row.last_error = "marked sent by the operator (relay log)"
        else:
            row.status, row.next_attempt_at, row.data_started_at = "retry", now, None
            row.last_error = "queued again by the operator (not in the relay log)"
        uow.add(row)
        uow.commit()
        return row
