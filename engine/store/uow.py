"""The unit of work: one transaction, rolled back unless committed; repositories never commit.

Services write ``with uow_factory() as uow: …; uow.commit()``. Everything SQL lives here
and in the other ``engine/store`` modules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import and_, delete, func, or_, update
from sqlalchemy import select as columns
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from engine.store import batched, bulk, enrollments, mailqueue
from engine.store.bulk import in_chunks
from engine.store.tables import (
    TABLES,
    Account,
    ConsentRecord,
    Enrollment,
    Event,
    Handover,
    JourneyPause,
    JourneyVersion,
    Lead,
    MailBody,
    MailOutbox,
    RunRecord,
    ScoreEntry,
    SentContent,
    SignInFailure,
    SignupAttempt,
    Suppression,
    TrackedLink,
    WebhookDelivery,
    WebhookEndpointState,
)
from engine.store.types import UtcDateTime


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        # One connection for the unit of work's life: a sender commits once per round of
        # mails, and a pooled connection checked out again per commit would be pinged
        # again (a round trip on PostgreSQL) each time.
        self._connection = self._engine.connect()
        self.session = Session(bind=self._connection, expire_on_commit=False)
        batched.install(self.session)  # changed rows: one statement per table and columns
        self._later: dict[tuple[type[SQLModel], tuple[str, ...]], list[dict[str, Any]]] = {}
        self._bodies: set[str] = set()  # Message-IDs of outbox rows added with their body
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # close() ends the transaction (rolling back anything uncommitted) but, unlike
        # rollback(), leaves loaded rows readable for the caller.
        try:
            self.session.close()
        finally:
            self._connection.close()

    def commit(self) -> None:
        self.session.flush()  # rows written later may point at rows the ORM holds
        for (table, _), rows in self._later.items():
            self.insert_rows(table, rows)
        self._later.clear()
        self.session.commit()

    def commit_unless_taken(self) -> bool:
        """Commit; False (rolled back) when a unique key was taken by another transaction
        meanwhile (e.g. a kept report two processes computed at once: the first stays)."""
        try:
            self.commit()
        except IntegrityError:
            self.session.rollback()
            return False
        return True

    def insert_later(self, table: type[SQLModel], row: dict[str, Any]) -> None:
        """A row nothing reads back in this transaction (stage history, webhook deliveries,
        notification mails): written with the others of its table and columns in one
        statement at commit (dropped if the unit of work is not committed)."""
        self._later.setdefault((table, tuple(row)), []).append(row)

    @property
    def postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def plan_for_values(self) -> None:
        """PostgreSQL: plan this transaction's statements for the values they carry.

        psycopg prepares a statement run five times, and PostgreSQL may then keep one generic
        plan for it, made while the tables were small: a lookup of a thousand event keys
        became a sequential scan comparing every row with every key (~250 ms per batch at
        160k events, seen without autovacuum). Event ingestion looks up batches of keys in
        tables that keep growing, so its plans are made for the values at hand."""
        if self.postgres:
            self.session.connection().exec_driver_sql(
                "SET LOCAL plan_cache_mode = force_custom_plan")

    def _among(self, column: Any, values: Iterable[Any]) -> Any:
        return bulk.among(self.session, column, values)

    def add(self, *rows: Any) -> None:
        session = self.session
        for row in rows:
            if isinstance(row, MailOutbox) and row.id is None and \
                    row.message_id not in self._bodies:
                raise TypeError("a new outbox row needs its body: use add_mail()")
            if row not in session:  # for one already here, add() only walks its cascades
                session.add(row)

    def flush(self) -> None:
        self.session.flush()

    # --- leads and accounts -------------------------------------------------------------

    def lead_by_email(self, email: str) -> Lead | None:
        return self.session.exec(select(Lead).where(Lead.email == email)).first()

    def lead_by_public_id(self, public_id: str) -> Lead | None:
        return self.session.exec(select(Lead).where(Lead.public_id == public_id)).first()

    def lead_by_nonce(self, nonce: str) -> Lead | None:
        return self.session.exec(select(Lead).where(Lead.doi_nonce == nonce)).first()

    def account_by_name(self, name: str) -> Account | None:
        return self.session.exec(
            select(Account).where(func.lower(Account.name) == name.lower())).first()

    def leads_due_for_reminder(self, *, requested_before: datetime, requested_after: datetime,
                               limit: int) -> Sequence[Lead]:
        return self.session.exec(
            select(Lead).where(Lead.status == "pending",
                               col(Lead.doi_reminded_at).is_(None),
                               col(Lead.doi_requested_at) <= requested_before,
                               col(Lead.doi_requested_at) > requested_after)
            .order_by(col(Lead.id)).limit(limit)).all()

    def unconfirmed_before(self, when: datetime, limit: int) -> Sequence[Lead]:
        return self.session.exec(
            select(Lead).where(Lead.status == "pending", col(Lead.confirmed_at).is_(None),
                               col(Lead.doi_requested_at) <= when)
            .order_by(col(Lead.id)).limit(limit)).all()

    def delete_lead_completely(self, lead_id: int) -> None:
        """Remove a lead and every row that points at it (unconfirmed purge)."""
        for table in (ConsentRecord, MailOutbox, ScoreEntry, Event, Enrollment, SentContent,
                      TrackedLink):
            self.session.execute(delete(table).where(_lead_column(table) == lead_id))
        self.session.execute(delete(Lead).where(col(Lead.id) == lead_id))

    # --- consent ------------------------------------------------------------------------

    def consent_records(self, lead_id: int) -> Sequence[ConsentRecord]:
        return self.session.exec(
            select(ConsentRecord).where(ConsentRecord.lead_id == lead_id)
            .order_by(col(ConsentRecord.occurred_at), col(ConsentRecord.id))).all()

    def consent_request(self, request_id: str) -> Sequence[ConsentRecord]:
        """The ledger records of one confirmation request (requested, confirmed), oldest
        first."""
        return self.session.exec(
            select(ConsentRecord).where(ConsentRecord.request_id == request_id)
            .order_by(col(ConsentRecord.occurred_at), col(ConsentRecord.id))).all()

    # --- suppression --------------------------------------------------------------------

    def suppression(self, email_hash: str) -> Suppression | None:
        return self.session.exec(
            select(Suppression).where(Suppression.email_hash == email_hash)).first()

    def suppressions_of(self, hashes: Iterable[str]) -> dict[str, str]:
        """Suppression reason per address hash, for the hashes that are suppressed."""
        found: dict[str, str] = {}
        for chunk in in_chunks(hashes):
            rows = self.session.exec(select(Suppression.email_hash, Suppression.reason).where(
                self._among(col(Suppression.email_hash), chunk))).all()
            found.update({digest: reason for digest, reason in rows})
        return found

    def add_mail(self, row: MailOutbox, *, body_html: str, body_text: str) -> None:
        """An outbox row built as an object, and its body (written at commit)."""
        self._bodies.add(row.message_id)
        self.add(row)
        self.insert_later(MailBody, {"message_id": row.message_id, "body_html": body_html,
                                     "body_text": body_text})

    def mail_body(self, message_id: str) -> MailBody | None:
        """A mail's rendered bodies (None once retention deleted them, or the row is gone)."""
        return self.session.get(MailBody, message_id)

    def record_outbox(self, changes: Iterable[dict[str, Any]]) -> None:
        """Outbox rows' new columns by id (each change carries ``id``), one statement per
        set of columns."""
        mailqueue.record(self.session, changes)

    def mark_data_started(self, ids: Sequence[int], *, owner: str, now: datetime,
                          lease_until: datetime, renew_batch: bool = True) -> set[int]:
        """The mark before SMTP DATA for a round, only on rows ``owner`` still holds; with
        ``renew_batch`` the lease of the owner's other rows is renewed with it. Returns the
        ids marked: a missing one was taken over (its lease expired) — not to be sent."""
        return mailqueue.mark_data_started(self.session, ids, owner=owner, now=now,
                                           lease_until=lease_until, renew_batch=renew_batch)

    def claimed_by_key(self, rows: Sequence[dict[str, Any]]) -> list[mailqueue.Claimed]:
        return mailqueue.claimed_by_key(self.session, rows)

    def lead_states(self, lead_ids: Iterable[int]) -> dict[int, mailqueue.LeadState]:
        return mailqueue.lead_states(self.session, lead_ids)

    def renew_webhook_lease(self, row_id: int, *, owner: str, lease_until: datetime,
                            renew_batch: bool = True) -> bool:
        """Before a delivery attempt: renew ``owner``'s lease on the row (and with
        ``renew_batch`` on all its claimed deliveries); False when the row is no longer
        ``owner``'s (its lease ran out and another sender took it over)."""
        table = WebhookDelivery.__table__  # type: ignore[attr-defined]
        owned = (table.c.lease_owner == owner, table.c.status == "delivering")
        connection = self.session.connection()
        held = connection.execute(update(table).where(table.c.id == row_id, *owned)
                                  .values(lease_until=lease_until)).rowcount
        if renew_batch:
            connection.execute(update(table).where(*owned).values(lease_until=lease_until))
        return bool(held)

    def suppress(self, email_hash: str, reason: str, now: datetime) -> None:
        existing = self.suppression(email_hash)
        if existing is None:
            self.session.add(Suppression(email_hash=email_hash, reason=reason, created_at=now))
        elif existing.reason in ("unsubscribed", "erased") and reason not in ("unsubscribed",
                                                                               "erased"):
            existing.reason = reason  # a bounce or complaint is the stronger reason
            self.session.add(existing)

    def lift_suppression(self, email_hash: str, reasons: Iterable[str]) -> None:
        self.session.execute(delete(Suppression).where(
            col(Suppression.email_hash) == email_hash, col(Suppression.reason).in_(list(reasons))))

    # --- sign-up attempts ---------------------------------------------------------------

    def attempts_since(self, *, email_hash: str | None = None, ip: str | None = None,
                       since: datetime) -> list[datetime]:
        query = select(SignupAttempt.at).where(col(SignupAttempt.at) > since)
        if email_hash is not None:
            query = query.where(SignupAttempt.email_hash == email_hash)
        if ip is not None:
            query = query.where(SignupAttempt.ip == ip)
        return sorted(self.session.exec(query).all())

    def forget_attempts(self, *, before: datetime | None = None,
                        email_hash: str | None = None) -> None:
        statement = delete(SignupAttempt)
        if before is not None:
            statement = statement.where(col(SignupAttempt.at) < before)
        if email_hash is not None:
            statement = statement.where(col(SignupAttempt.email_hash) == email_hash)
        self.session.execute(statement)

    # --- workbench sign-ins --------------------------------------------------------------

    def sign_in_failures(self, ip: str, *, since: datetime) -> list[datetime]:
        """When ``ip`` failed to sign in after ``since``, oldest first."""
        return sorted(self.session.exec(select(SignInFailure.at).where(
            SignInFailure.ip == ip, col(SignInFailure.at) > since)).all())

    def record_sign_in_failure(self, ip: str, at: datetime, *, forget_before: datetime) -> None:
        """A failed sign-in; failures older than ``forget_before`` (every address's) go."""
        self.forget_sign_in_failures(before=forget_before)
        self.session.add(SignInFailure(ip=ip, at=at))

    def forget_sign_in_failures(self, ip: str | None = None, *,
                                before: datetime | None = None) -> int:
        """Forget an address's failed sign-ins, or everyone's older than ``before``."""
        statement = delete(SignInFailure)
        if ip is not None:
            statement = statement.where(col(SignInFailure.ip) == ip)
        if before is not None:
            statement = statement.where(col(SignInFailure.at) <= before)
        return int(self.session.execute(statement).rowcount)  # type: ignore[attr-defined]

    # --- outbox -------------------------------------------------------------------------

    def outbox_row(self, row_id: int) -> MailOutbox | None:
        return self.session.get(MailOutbox, row_id)

    def outbox_rows(self, *, status: str | None = None, limit: int = 50) -> list[MailOutbox]:
        """Outbox rows, newest first (``ripen outbox list``)."""
        query = select(MailOutbox).order_by(col(MailOutbox.id).desc()).limit(limit)
        if status is not None:
            query = query.where(MailOutbox.status == status)
        return list(self.session.exec(query).all())

    def claim_mail(self, *, now: datetime, owner: str, lease_until: datetime, limit: int,
                   ids: Sequence[int] | None = None) -> list[mailqueue.Claimed]:
        """Claim due rows for sending; SKIP LOCKED on PostgreSQL so senders never collide."""
        return mailqueue.claim(self.session, now=now, owner=owner, lease_until=lease_until,
                               limit=limit, ids=ids)

    def claim_webhooks(self, *, now: datetime, owner: str, lease_until: datetime, limit: int,
                       ids: Sequence[int] | None = None) -> list[WebhookDelivery]:
        """Due deliveries, and those whose sender's lease expired (crash: sent again, same id)."""
        query = (select(WebhookDelivery)
                 .where(or_(and_(col(WebhookDelivery.status).in_(("pending", "retry")),
                                 or_(col(WebhookDelivery.next_attempt_at).is_(None),
                                     col(WebhookDelivery.next_attempt_at) <= now)),
                            and_(col(WebhookDelivery.status) == "delivering",
                                 col(WebhookDelivery.lease_until) < now)))
                 .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
                 .limit(limit))
        return self._lease(query, WebhookDelivery, ids, "delivering", owner, lease_until)

    def _lease(self, query: Any, table: type[Any], ids: Sequence[int] | None, status: str,
               owner: str, lease_until: datetime) -> list[Any]:
        """Lock the rows ``query`` selects (SKIP LOCKED on PostgreSQL) and lease them."""
        if ids is not None:
            query = query.where(self._among(col(table.id), ids))
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(self.session.exec(query).all())
        for row in rows:
            row.status, row.lease_owner, row.lease_until = status, owner, lease_until
            self.session.add(row)
        return rows

    def webhook(self, delivery_id: int) -> WebhookDelivery | None:
        return self.session.get(WebhookDelivery, delivery_id)

    def webhooks(self, *, handover_id: int | None = None, status: str | None = None,
                 limit: int = 100) -> Sequence[WebhookDelivery]:
        query = select(WebhookDelivery)
        if handover_id is not None:
            query = query.where(WebhookDelivery.handover_id == handover_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        return self.session.exec(query.order_by(col(WebhookDelivery.id).desc())
                                 .limit(limit)).all()

    def disabled_endpoints(self) -> set[str]:
        return set(self.session.exec(select(WebhookEndpointState.endpoint_id)).all())

    def disable_endpoint(self, endpoint_id: str, reason: str, now: datetime) -> None:
        if endpoint_id not in self.disabled_endpoints():
            self.session.add(WebhookEndpointState(endpoint_id=endpoint_id, reason=reason,
                                                  disabled_at=now))

    def enable_endpoint(self, endpoint_id: str) -> None:
        self.session.execute(delete(WebhookEndpointState).where(
            col(WebhookEndpointState.endpoint_id) == endpoint_id))

    def expired_sending(self, now: datetime, limit: int) -> Sequence[MailOutbox]:
        return self.session.exec(
            select(MailOutbox).where(MailOutbox.status == "sending",
                                     col(MailOutbox.lease_until) < now)
            .order_by(col(MailOutbox.id)).limit(limit)).all()

    def cancel_marketing_mail(self, lead_id: int, reason: str) -> int:
        """Pending marketing mail of a lead will not go out (unsubscribe, erase)."""
        result = self.session.execute(
            update(MailOutbox)
            .where(col(MailOutbox.lead_id) == lead_id, col(MailOutbox.kind) == "marketing",
                   col(MailOutbox.status).in_(("pending", "retry")))
            .values(status="suppressed", last_error=reason))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def end_enrollments(self, lead_id: int, reason: str, now: datetime) -> None:
        self.session.execute(
            update(Enrollment)
            .where(col(Enrollment.lead_id) == lead_id,
                   col(Enrollment.status).in_(enrollments.IN_JOURNEY))
            .values(status="exited", exit_reason=reason, ended_at=now, due_at=None)
            .execution_options(synchronize_session="fetch"))

    # --- journeys -----------------------------------------------------------------------

    def claim_enrollments(self, *, journey_id: str, version: str, step_id: str, now: datetime,
                          limit: int) -> list[Enrollment]:
        """Due enrollments at one step, locked for this transaction (SKIP LOCKED on PG)."""
        query = enrollments.due_at_step(self.session, select(Enrollment),
                                        journey_id=journey_id, version=version,
                                        step_id=step_id, now=now, limit=limit)
        return list(self.session.exec(query).all())

    def leads_by_id(self, ids: Iterable[int]) -> dict[int, Lead]:
        rows = self.session.exec(select(Lead).where(self._among(col(Lead.id), ids))).all()
        return {row.id: row for row in rows if row.id is not None}

    def accounts_by_id(self, ids: Iterable[int]) -> dict[int, Account]:
        found: dict[int, Account] = {}
        for chunk in in_chunks(i for i in ids if i is not None):
            for row in self.session.exec(
                    select(Account).where(self._among(col(Account.id), chunk))):
                if row.id is not None:
                    found[row.id] = row
        return found

    def sent_content_of(self, lead_ids: Iterable[int]) -> set[tuple[int, str]]:
        rows = self.session.exec(select(SentContent.lead_id, SentContent.content_id)
                                 .where(self._among(col(SentContent.lead_id), lead_ids))).all()
        return {(lead_id, content_id) for lead_id, content_id in rows}

    def marketing_sends_since(self, lead_ids: Iterable[int],
                              since: datetime) -> dict[int, list[datetime]]:
        rows = self.session.exec(
            select(MailOutbox.lead_id, MailOutbox.created_at)
            .where(self._among(col(MailOutbox.lead_id), lead_ids),
                   col(MailOutbox.kind) == "marketing",
                   col(MailOutbox.status).not_in(("suppressed", "failed")),
                   col(MailOutbox.created_at) > since)).all()
        found: dict[int, list[datetime]] = {}
        for lead_id, at in rows:
            if lead_id is not None:
                found.setdefault(lead_id, []).append(at)
        return found

    def last_enrollment(self, lead_id: int, journey_id: str) -> Enrollment | None:
        return self.session.exec(
            select(Enrollment).where(col(Enrollment.lead_id) == lead_id,
                                     col(Enrollment.journey_id) == journey_id)
            .order_by(col(Enrollment.started_at).desc())).first()

    def events_since(self, lead_id: int, since: datetime) -> Sequence[Event]:
        return self.session.exec(
            select(Event).where(col(Event.lead_id) == lead_id,
                                col(Event.occurred_at) >= since,
                                col(Event.is_scanner).is_(False))
            .order_by(col(Event.occurred_at))).all()

    def dormant_enrollments(self, *, journey_id: str, before: datetime,
                            limit: int) -> list[Enrollment]:
        """Active enrollments without engagement since ``before`` (the slowest case)."""
        last = func.coalesce(col(Enrollment.last_engaged_at), col(Enrollment.started_at))
        query = (select(Enrollment)
                 .where(col(Enrollment.journey_id) == journey_id,
                        col(Enrollment.status) == "active", last <= before)
                 .order_by(col(Enrollment.id)).limit(limit))
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        return list(self.session.exec(query).all())

    def next_due_at(self) -> datetime | None:
        """When the earliest active enrollment is due (None: nothing is scheduled)."""
        return self.session.exec(select(func.min(col(Enrollment.due_at))).where(
            col(Enrollment.status) == "active")).one()

    def due_step_counts(self, *, now: datetime) -> list[tuple[str, str, str, int]]:
        """(journey, version, step, due) through the ``ix_enrollment_due`` index."""
        return [(d.journey_id, d.journey_version, d.step_id, d.count)
                for d in enrollments.due_steps(self.session, now=now)]

    def claim_due(self, *, journey_id: str, version: str, step_id: str, now: datetime,
                  limit: int) -> list[enrollments.DueEnrollment]:
        """A send step's due enrollments as plain values (see ``claim_enrollments``)."""
        return enrollments.claim_due(self.session, journey_id=journey_id, version=version,
                                     step_id=step_id, now=now, limit=limit)

    def recipients(self, lead_ids: Iterable[int]) -> dict[int, enrollments.Recipient]:
        return enrollments.recipients(self.session, lead_ids)

    def hold_leads(self, lead_ids: Iterable[int]) -> set[int]:
        """Hold these leads until this transaction ends; returns those another transaction
        holds (leave them for a later batch).

        Two workers deciding mails for the same lead at once (its enrollments in two
        journeys, claimed by different ticks) would each miss the other's mail: both pass
        the frequency cap, or both send the same content. On PostgreSQL the lead rows are
        locked ``FOR NO KEY UPDATE SKIP LOCKED``: never a wait (so never part of a deadlock),
        and a row lock lives in the row, not in the server's bounded lock table (a thousand
        advisory locks per batch would fill it with a few workers). A lead whose events are
        being recorded is held too, for that moment. SQLite lets one writer in at a time:
        nothing to hold."""
        wanted = set(lead_ids)
        if not self.postgres or not wanted:
            return set()
        held = set(self.session.execute(
            columns(col(Lead.id)).where(self._among(col(Lead.id), sorted(wanted)))
            .with_for_update(skip_locked=True, key_share=True, read=False)).scalars())
        if held == wanted:
            return set()
        # skipped or gone: only a lead that is still there is busy (a gone one is the
        # caller's to end, as it would be without the hold)
        return set(self.session.execute(columns(col(Lead.id)).where(
            self._among(col(Lead.id), sorted(wanted - held)))).scalars())

    def account_names(self, account_ids: Iterable[int]) -> dict[int, str]:
        return enrollments.account_names(self.session, account_ids)

    def journey_versions(self) -> dict[tuple[str, str], JourneyVersion]:
        rows = self.session.exec(select(JourneyVersion)).all()
        return {(row.journey_id, row.version): row for row in rows}

    def in_flight(self, journey_id: str) -> Sequence[Enrollment]:
        return self.session.exec(
            select(Enrollment).where(col(Enrollment.journey_id) == journey_id,
                                     col(Enrollment.status).in_(enrollments.IN_JOURNEY))).all()

    def oldest_engagement(self) -> dict[str, datetime]:
        """Per journey, the oldest last engagement (or start) of its active enrollments:
        whether the slowest case has leads to take out, in one query for every journey."""
        last = func.min(func.coalesce(col(Enrollment.last_engaged_at),
                                      col(Enrollment.started_at)), type_=UtcDateTime())
        rows = self.session.exec(select(Enrollment.journey_id, last)
                                 .where(col(Enrollment.status) == "active")
                                 .group_by(Enrollment.journey_id)).all()
        return {journey: when for journey, when in rows if when is not None}

    def paused_journeys(self) -> dict[str, JourneyPause]:
        return {row.journey_id: row for row in self.session.exec(select(JourneyPause)).all()}

    def last_run(self, kind: str, *, finished: bool = False) -> RunRecord | None:
        """The newest tick or maintenance run (only those that ended, with ``finished``)."""
        query = select(RunRecord).where(RunRecord.kind == kind)
        if finished:
            query = query.where(col(RunRecord.finished_at).is_not(None))
        return self.session.exec(query.order_by(col(RunRecord.started_at).desc(),
                                                col(RunRecord.id).desc()).limit(1)).first()

    def forget_runs(self, *, before: datetime) -> int:
        table = RunRecord.__table__  # type: ignore[attr-defined]
        return int(self.session.connection().execute(
            delete(table).where(table.c.started_at < before)).rowcount or 0)

    def quarantined(self, *, journey_id: str | None = None, emails: Sequence[str] = (),
                    limit: int = 10_000) -> list[tuple[Enrollment, str | None]]:
        """Quarantined enrollments (oldest first) with their lead's address."""
        query = (select(Enrollment, Lead.email).join(Lead, col(Lead.id) == Enrollment.lead_id)
                 .where(col(Enrollment.status) == "quarantined"))
        if journey_id is not None:
            query = query.where(col(Enrollment.journey_id) == journey_id)
        if emails:
            query = query.where(col(Lead.email).in_(list(emails)))
        rows = self.session.exec(query.order_by(col(Enrollment.quarantined_at),
                                                col(Enrollment.id)).limit(limit)).all()
        return [(enrollment, email) for enrollment, email in rows]

    def quarantined_counts(self) -> dict[str, int]:
        """Quarantined enrollments per journey."""
        rows = self.session.exec(select(Enrollment.journey_id, func.count())
                                 .where(col(Enrollment.status) == "quarantined")
                                 .group_by(Enrollment.journey_id)).all()
        return {journey: int(count) for journey, count in rows}

    def journeys_with_active(self) -> set[str]:
        return set(self.session.exec(select(Enrollment.journey_id).distinct()
                                     .where(col(Enrollment.status) == "active")).all())

    def tracked_link(self, token_id: str) -> TrackedLink | None:
        return self.session.exec(
            select(TrackedLink).where(col(TrackedLink.token_id) == token_id)).first()

    def outbox_by_key(self, key: str) -> MailOutbox | None:
        return self.session.exec(
            select(MailOutbox).where(col(MailOutbox.idempotency_key) == key)).first()

    def open_pipeline(self) -> dict[str, int]:
        """Leads with sales now: MQL (not yet answered) and SAL onwards."""
        found = {"mql": 0, "sal": 0}
        for stage, count in self.session.exec(
                select(Lead.sales_stage, func.count()).where(
                    col(Lead.sales_stage).is_not(None)).group_by(col(Lead.sales_stage))).all():
            found["mql" if stage == "MQL" else "sal"] += int(count)
        return found

    def score_entries_of(self, lead_ids: list[int]) -> dict[int, list[ScoreEntry]]:
        found: dict[int, list[ScoreEntry]] = {}
        for entry in self.session.exec(select(ScoreEntry).where(
                self._among(col(ScoreEntry.lead_id), lead_ids))
                .order_by(col(ScoreEntry.created_at), col(ScoreEntry.id))).all():
            found.setdefault(entry.lead_id, []).append(entry)
        return found

    def explicit_held(self, lead_ids: Iterable[int]) -> dict[int, dict[str, float]]:
        """Each lead's explicit points per rule, summed over the ledger."""
        found: dict[int, dict[str, float]] = {}
        for chunk in in_chunks(lead_ids):
            for lead_id, rule_id, points in self.session.exec(
                    select(ScoreEntry.lead_id, ScoreEntry.rule_id, func.sum(ScoreEntry.delta))
                    .where(self._among(col(ScoreEntry.lead_id), chunk),
                           ScoreEntry.kind == "explicit")
                    .group_by(col(ScoreEntry.lead_id), col(ScoreEntry.rule_id))).all():
                found.setdefault(lead_id, {})[rule_id] = float(points)
        return found

    def implicit_entries_of(self, lead_ids: Iterable[int]
                            ) -> dict[int, list[tuple[datetime, float]]]:
        """Each lead's implicit ledger rows as (dated at, points)."""
        found: dict[int, list[tuple[datetime, float]]] = {}
        for chunk in in_chunks(lead_ids):
            for lead_id, at, points in self.session.exec(
                    select(ScoreEntry.lead_id, ScoreEntry.created_at, ScoreEntry.delta)
                    .where(self._among(col(ScoreEntry.lead_id), chunk),
                           ScoreEntry.kind == "implicit")).all():
                found.setdefault(lead_id, []).append((at, points))
        return found

    def content_read_by(self, lead_ids: Iterable[int], *,
                        since_recycle: bool = False) -> dict[int, set[str]]:
        """Content each lead clicked or downloaded (scanner clicks left out); with
        ``since_recycle`` only since it was recycled — a recycled lead needs new proof — or
        since it was created, if it never was."""
        found: dict[int, set[str]] = {}
        for chunk in in_chunks(lead_ids):
            query = (select(Event.lead_id, Event.content_id)
                     .where(self._among(col(Event.lead_id), chunk),
                            col(Event.type).in_(("click", "download")),
                            col(Event.is_scanner).is_(False),
                            col(Event.content_id).is_not(None)).distinct())
            if since_recycle:
                query = query.join(Lead, col(Lead.id) == col(Event.lead_id)).where(or_(
                    and_(col(Lead.recycled_at).is_(None),
                         col(Event.occurred_at) >= col(Lead.created_at)),
                    col(Event.occurred_at) > col(Lead.recycled_at)))
            for lead_id, content_id in self.session.exec(query).all():
                found.setdefault(lead_id, set()).add(content_id or "")
        return found

    def score_entries(self, lead_id: int, kind: str | None = None) -> Sequence[ScoreEntry]:
        query = select(ScoreEntry).where(ScoreEntry.lead_id == lead_id)
        if kind is not None:
            query = query.where(ScoreEntry.kind == kind)
        return self.session.exec(query.order_by(col(ScoreEntry.created_at),
                                                col(ScoreEntry.id))).all()

    def outbox_ids_by_key(self, keys: Sequence[str]) -> list[int]:
        return [row_id for row_id in self.session.exec(select(MailOutbox.id).where(
            self._among(col(MailOutbox.idempotency_key), keys))).all() if row_id is not None]

    def outbox_by_message_id(self, message_id: str) -> MailOutbox | None:
        return self.session.exec(
            select(MailOutbox).where(MailOutbox.message_id == message_id)).first()

    def event_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these idempotency keys are recorded already."""
        found: set[str] = set()
        for chunk in in_chunks(keys):
            found.update(k for k in self.session.exec(select(Event.idempotency_key).where(
                self._among(col(Event.idempotency_key), chunk))).all() if k)
        return found

    def active_enrollments_of(self, lead_ids: list[int]) -> dict[int, list[Enrollment]]:
        found: dict[int, list[Enrollment]] = {}
        for chunk in in_chunks(lead_ids):
            for enrollment in self.session.exec(select(Enrollment).where(
                    self._among(col(Enrollment.lead_id), chunk),
                    col(Enrollment.status) == "active").order_by(col(Enrollment.id))).all():
                found.setdefault(enrollment.lead_id, []).append(enrollment)
        return found

    def leads_by_email(self, emails: Iterable[str]) -> dict[str, Lead]:
        found: dict[str, Lead] = {}
        for chunk in in_chunks(emails):
            for lead in self.session.exec(
                    select(Lead).where(self._among(col(Lead.email), chunk))).all():
                if lead.email is not None:
                    found[lead.email] = lead
        return found

    def insert_events(self, rows: list[dict[str, Any]]) -> list[int]:
        """Events in one statement; their ids, in the order of ``rows``. On PostgreSQL the
        ids are taken from the sequence first and the rows go in by COPY (a multi-row
        INSERT … RETURNING of a thousand rows costs psycopg more to parse than to run)."""
        if not rows:
            return []
        if self.postgres:
            ids = [int(row[0]) for row in self.session.connection().exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('event', 'id')) "
                "FROM generate_series(1, %(n)s)", {"n": len(rows)}).all()]
            bulk.insert(self.session, Event, [{"id": event_id, **row}
                                              for event_id, row in zip(ids, rows, strict=True)])
            return ids
        # SQLite: one executemany (SQLAlchemy would send an INSERT … RETURNING per row to
        # keep the ids in order). The transaction holds SQLite's write lock from the first
        # row on, so the rows get consecutive ids ending at last_insert_rowid().
        bulk.insert(self.session, Event, rows)
        connection = self.session.connection()
        last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        first = last - len(rows) + 1
        found = connection.exec_driver_sql(
            "SELECT count(*) FROM event WHERE id BETWEEN ? AND ?", (first, last)).scalar_one()
        if found != len(rows):
            raise RuntimeError(f"event ids not consecutive: {found} of {len(rows)} rows "
                               f"in {first}..{last}")
        return list(range(first, last + 1))

    def stage_engagement(self, enrollments: Sequence[Enrollment]
                         ) -> dict[tuple[int, datetime], Counter[tuple[str, str | None]]]:
        """Each enrollment's non-scanner events since it entered its stage, counted by
        (type, content), keyed by (enrollment id, stage entry)."""
        entered = {e.id: e.stage_entered_at for e in enrollments if e.id is not None}
        found: dict[tuple[int, datetime], Counter[tuple[str, str | None]]] = {}
        for chunk in in_chunks(entered):
            rows = self.session.exec(
                select(Enrollment.id, Event.type, Event.content_id, func.count())
                .join(Event, col(Event.lead_id) == col(Enrollment.lead_id))
                .where(self._among(col(Enrollment.id), chunk),
                       col(Event.occurred_at) >= col(Enrollment.stage_entered_at),
                       col(Event.is_scanner).is_(False))
                .group_by(col(Enrollment.id), col(Event.type), col(Event.content_id))).all()
            for enrollment_id, kind, content_id, number in rows:
                if enrollment_id is not None:
                    found.setdefault((enrollment_id, entered[enrollment_id]),
                                     Counter())[(kind, content_id)] = int(number)
        return found

    def event_by_key(self, key: str) -> Event | None:
        return self.session.exec(select(Event).where(col(Event.idempotency_key) == key)).first()

    # --- GDPR ---------------------------------------------------------------------------

    def rows_of_lead(self, table: type[Any], lead_id: int) -> Sequence[Any]:
        return self.session.exec(select(table).where(_lead_column(table) == lead_id)).all()

    def delete_rows_of_lead(self, table: type[Any], lead_id: int) -> None:
        self.session.execute(delete(table).where(_lead_column(table) == lead_id))

    # --- retention (engine.retention) ----------------------------------------------------

    def _oldest_ids(self, table: Any, *conditions: Any, limit: int) -> list[int]:
        return list(self.session.execute(columns(table.c.id).where(*conditions)
                                         .order_by(table.c.id).limit(limit)).scalars())

    def purge_mail_bodies(self, *, before: datetime, limit: int) -> int:
        """The rendered text and HTML of mails that ended before ``before`` (sent, failed,
        suppressed; never one that may still go out or must be settled): their
        ``mail_body`` rows, oldest first."""
        table = MailOutbox.__table__  # type: ignore[attr-defined]
        bodies = MailBody.__table__  # type: ignore[attr-defined]
        message_ids = list(self.session.execute(
            columns(table.c.message_id)
            .join(bodies, bodies.c.message_id == table.c.message_id)
            .where(table.c.status.in_(("sent", "failed", "suppressed")),
                   table.c.created_at < before)
            .order_by(table.c.id).limit(limit)).scalars())
        for chunk in in_chunks(message_ids):
            self.session.execute(delete(bodies).where(self._among(bodies.c.message_id, chunk)))
        return len(message_ids)

    def purge_links(self, *, before: datetime, limit: int) -> int:
        table = TrackedLink.__table__  # type: ignore[attr-defined]
        ids = self._oldest_ids(table, table.c.created_at < before, limit=limit)
        for chunk in in_chunks(ids):
            self.session.execute(delete(table).where(self._among(table.c.id, chunk)))
        return len(ids)

    def purge_events(self, *, before: datetime, limit: int) -> int:
        """Events before ``before``; the score ledger keeps its points, without the event."""
        table = Event.__table__  # type: ignore[attr-defined]
        scores = ScoreEntry.__table__  # type: ignore[attr-defined]
        ids = self._oldest_ids(table, table.c.occurred_at < before, limit=limit)
        for chunk in in_chunks(ids):
            self.session.execute(update(scores).where(self._among(scores.c.event_id, chunk))
                                 .values(event_id=None))
            self.session.execute(delete(table).where(self._among(table.c.id, chunk)))
        return len(ids)

    def purge_webhooks(self, *, statuses: Sequence[str], before: datetime, limit: int) -> int:
        table = WebhookDelivery.__table__  # type: ignore[attr-defined]
        ids = self._oldest_ids(table, table.c.status.in_(list(statuses)),
                               func.coalesce(table.c.delivered_at, table.c.created_at) < before,
                               limit=limit)
        for chunk in in_chunks(ids):
            self.session.execute(delete(table).where(self._among(table.c.id, chunk)))
        return len(ids)

    def purge_erased_consents(self, *, before: datetime, limit: int) -> int:
        """The pseudonymised consent ledger of people erased before ``before``."""
        table = ConsentRecord.__table__  # type: ignore[attr-defined]
        leads = Lead.__table__  # type: ignore[attr-defined]
        erased = columns(leads.c.id).where(leads.c.status == "erased",
                                           leads.c.updated_at < before)
        ids = self._oldest_ids(table, table.c.lead_id.in_(erased), limit=limit)
        for chunk in in_chunks(ids):
            self.session.execute(delete(table).where(self._among(table.c.id, chunk)))
        return len(ids)

    def forget_account_if_unused(self, account_id: int) -> bool:
        """Delete the account when no lead belongs to it any more (a one-person company's
        name names its person); True when it was deleted."""
        used = self.session.exec(select(func.count()).select_from(Lead).where(
            col(Lead.account_id) == account_id)).one()
        if used:
            return False
        self.session.execute(delete(Account).where(col(Account.id) == account_id))
        return True

    def scrub(self) -> None:
        """After an erasure, on SQLite: checkpoint the WAL into the database file and
        truncate it, so no copy of an erased row stays in the WAL (``secure_delete`` has
        zeroed the freed space in the file itself). PostgreSQL keeps dead row versions until
        (auto)vacuum reclaims them."""
        if self._engine.dialect.name == "sqlite":
            raw = self._engine.raw_connection()  # outside a transaction, which would block it
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                raw.close()

    def delete_webhooks_of(self, handover_ids: Sequence[int]) -> None:
        if handover_ids:
            self.session.execute(delete(WebhookDelivery).where(
                self._among(col(WebhookDelivery.handover_id), handover_ids)))

    def handovers_of(self, lead_id: int) -> Sequence[Handover]:
        return self.session.exec(select(Handover).where(Handover.lead_id == lead_id)
                                 .order_by(col(Handover.created_at), col(Handover.id))).all()

    # --- qualification and handover -----------------------------------------------------

    def leads_to_qualify(self, now: datetime, limit: int) -> Sequence[Lead]:
        return self.session.exec(
            select(Lead).where(col(Lead.qualify_at) <= now).order_by(col(Lead.qualify_at),
                                                                     col(Lead.id))
            .limit(limit).with_for_update(skip_locked=True)).all()

    def enrollments_of_leads(self, lead_ids: Iterable[int]) -> dict[int, list[Enrollment]]:
        """Every enrollment of each lead, oldest first."""
        found: dict[int, list[Enrollment]] = {}
        for chunk in in_chunks(lead_ids):
            for enrollment in self.session.exec(
                    select(Enrollment).where(self._among(col(Enrollment.lead_id), chunk))
                    .order_by(col(Enrollment.started_at), col(Enrollment.id))).all():
                found.setdefault(enrollment.lead_id, []).append(enrollment)
        return found

    def contacts_of_accounts(self, account_ids: Iterable[int],
                             per_account: int = 200) -> dict[int, list[Contact]]:
        """Each account's contacts with an address (the first ``per_account`` by id)."""
        found: dict[int, list[Contact]] = {}
        for chunk in in_chunks(account_ids):
            for row in self.session.execute(
                    columns(*_CONTACT).where(self._among(col(Lead.account_id), chunk),
                                             col(Lead.email).is_not(None))
                    .order_by(col(Lead.id))).all():
                contact = Contact(*row)
                contacts = found.setdefault(contact.account_id, [])
                if len(contacts) < per_account:
                    contacts.append(contact)
        return found

    def history_of(self, lead_ids: Iterable[int]) -> dict[int, list[EventRow]]:
        """Each lead's events since it was created (scanners left out), oldest first."""
        found: dict[int, list[EventRow]] = {}
        for chunk in in_chunks(lead_ids):
            for row in self.session.execute(
                    columns(col(Event.lead_id), col(Event.type), col(Event.content_id),
                            col(Event.stage), col(Event.occurred_at))
                    .join(Lead, col(Lead.id) == col(Event.lead_id))
                    .where(self._among(col(Event.lead_id), chunk), col(Event.is_scanner).is_(False),
                           col(Event.occurred_at) >= col(Lead.created_at))
                    .order_by(col(Event.occurred_at), col(Event.id))).all():
                found.setdefault(row[0], []).append(EventRow(*row[1:]))
        return found

    def insert_rows(self, table: type[SQLModel], rows: list[dict[str, Any]]) -> None:
        """Many rows in one executemany (no ORM objects, no primary keys read back).
        Outbox rows carry their bodies (``body_html``, ``body_text``), which go to
        ``mail_body``."""
        if table is MailOutbox:
            mails, bodies = mailqueue.split_bodies(rows)
            bulk.insert(self.session, MailOutbox, mails)
            bulk.insert(self.session, MailBody, bodies)
        else:
            bulk.insert(self.session, table, rows)

    def update_rows(self, table: type[SQLModel], rows: list[dict[str, Any]]) -> int:
        """Many rows by id in one executemany (each row sets the same columns)."""
        return bulk.update(self.session, table, rows)

    def qualify_account(self, account_id: int, now: datetime, *, besides: int) -> None:
        """Mark the confirmed contacts of an account (but one) for scoring on the next tick."""
        self.session.execute(
            update(Lead)
            .where(col(Lead.account_id) == account_id, col(Lead.id) != besides,
                   col(Lead.status) == "confirmed")
            .values(qualify_at=now))

    def handover_by_public_id(self, public_id: str) -> Handover | None:
        return self.session.exec(select(Handover).where(
            Handover.public_id == public_id).with_for_update()).first()

    def handover_grades_since(self, since: datetime
                              ) -> list[tuple[str | None, str | None, int]]:
        """(rep, grade, how many) of the handovers since ``since``."""
        rows = self.session.exec(select(Handover.rep_id, Handover.grade, func.count()).where(
            col(Handover.created_at) >= since).group_by(col(Handover.rep_id),
                                                        col(Handover.grade))).all()
        return [(rep, grade, int(count)) for rep, grade, count in rows]

    def overdue_handovers(self, now: datetime, limit: int) -> Sequence[Handover]:
        return self.session.exec(
            select(Handover).where(Handover.status == "open",
                                   col(Handover.escalated_at).is_(None),
                                   col(Handover.sla_due_at) <= now)
            .order_by(col(Handover.sla_due_at)).limit(limit)
            .with_for_update(skip_locked=True)).all()

    def handovers(self, *, status: str | None = None, limit: int = 100) -> Sequence[Handover]:
        query = select(Handover)
        if status is not None:
            query = query.where(Handover.status == status)
        return self.session.exec(query.order_by(col(Handover.created_at).desc())
                                 .limit(limit)).all()


def _lead_column(table: type[Any]) -> Any:
    return table.__table__.c.lead_id


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact of an account as the buying center shows it."""

    id: int
    account_id: int
    first_name: str | None
    last_name: str | None
    job_title: str | None
    persona_id: str | None
    recycled_at: datetime | None
    implicit_points: float | None
    implicit_points_at: datetime | None
    implicit_points_model: str | None


_CONTACT: tuple[Any, ...] = (
    Lead.id, Lead.account_id, Lead.first_name, Lead.last_name, Lead.job_title,
    Lead.persona_id, Lead.recycled_at, Lead.implicit_points, Lead.implicit_points_at,
    Lead.implicit_points_model)


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event as a lead's history lists it."""

    type: str
    content_id: str | None
    stage: str | None
    occurred_at: datetime


UowFactory = Callable[[], UnitOfWork]

__all__ = ["TABLES", "Contact", "EventRow", "UnitOfWork", "UowFactory"]
