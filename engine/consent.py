"""Capture and double opt-in with court-proof consent (DSGVO/UWG; seed 002 §5.2).

Without a confirmed opt-in nothing is mailed. Every request, confirmation, pause and
withdrawal is appended to the consent ledger with the text exactly as shown (BGH I ZR 164/09).
A GET never confirms (mail scanners pre-fetch links): only ``confirm`` does, which the
API calls for the POST of a button. Answers to sign-ups do not depend on the address's
state, so the form cannot be used to find out who is subscribed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from engine import crm_events, lead_fields
from engine.accounts import AccountFacts, attach_account
from engine.addresses import InvalidAddress, address_hash, normalise_email
from engine.clock import Clock
from engine.config.compiler import CompiledConfig
from engine.config.consent import ConsentText
from engine.consent_states import Request as ConsentRequest
from engine.consent_states import Status, move
from engine.errors import RipenError
from engine.mail.context import DOI, doi_context
from engine.mail.message import new_message_id
from engine.mail.render import Renderer
from engine.store.tables import ConsentRecord, Event, Lead, MailOutbox, SignupAttempt
from engine.store.uow import UnitOfWork, UowFactory
from engine.tokens import Purpose, TokenExpired, TokenInvalid, Tokens

log = logging.getLogger(__name__)

LeadSource = Literal["website", "telemarketing", "direct_mail", "event", "trade_fair", "ad",
                     "import", "api", "partner", "other"]
LEAD_SOURCES: tuple[str, ...] = LeadSource.__args__  # type: ignore[attr-defined]
#: Suppressions a new double opt-in may lift (the person asks again); others stay.
LIFTABLE = ("unsubscribed", "erased")
PAUSE = timedelta(days=90)
#: An unsubscribe withdraws these purposes (phone consent is another channel; it stays).
WITHDRAWN_BY_UNSUBSCRIBE = ("email_marketing", "tracking")
#: The sign-up's texts checked against the columns they are stored in.
CHECKED_TEXTS = ("first_name", "last_name", "company", "job_title", "phone", "campaign",
                 "persona", "consent_version", "content", "form", "customer_journey")


class ConsentError(RipenError):
    """A sign-up that cannot be accepted as given (missing consent, unknown version …)."""


class Answer(StrEnum):
    """What the sign-up form may say: the same for every address state."""

    ACCEPTED = "accepted"
    RATE_LIMITED = "rate_limited"


class LeadState(StrEnum):
    """What really happened (for imports and logs, never for the public form)."""

    NEW = "new"
    PENDING = "pending"
    CONFIRMED = "already_confirmed"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class SignUp:
    email: str
    source: str
    consent_version: str
    purposes: frozenset[str] = frozenset({"email_marketing"})
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    phone: str | None = None
    language: str = "de"
    campaign: str | None = None
    persona: str | None = None
    content: str | None = None  # the content item the form offered: it implies the stage
    account: AccountFacts = field(default_factory=AccountFacts)  # the company's facts
    # An existing customer: the after-sales journey (and its stage) to enter once confirmed.
    customer_journey: str | None = None
    customer_stage: str | None = None
    form: str = "web-form"
    by_the_person: bool = True  # the person asked (form); False for imports and API pushes
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SignUpResult:
    answer: Answer
    state: LeadState | None = None
    retry_after: int | None = None
    send_now: list[int] = field(default_factory=list)


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    UPDATED = "details_confirmed"  # a confirmed lead confirmed the details it gave again
    ALREADY = "already_confirmed"
    #: The link's request was closed: withdrawn (unsubscribe, complaint, bounce) after it
    #: was sent, or replaced by a newer one. It confirms nothing; signing up again does.
    CLOSED = "closed"


@dataclass(frozen=True)
class ProofEntry:
    occurred_at: datetime
    action: str
    purpose: str
    detail: dict[str, str | None]


@dataclass(frozen=True)
class Proof:
    email: str
    status: str
    created_at: datetime
    source: str | None
    campaign: str | None
    entries: list[ProofEntry]
    texts: dict[str, str]  # sha256 → full text as shown


def _random_public_id() -> str:
    return secrets.token_urlsafe(16)


class ConsentService:
    def __init__(self, *, uow: UowFactory, config: CompiledConfig, tokens: Tokens,
                 renderer: Renderer, clock: Clock, base_url: str,
                 check_deliverability: bool = False,
                 on_confirmed: Callable[[UnitOfWork, Lead, datetime], object] | None = None,
                 on_customer: Callable[[UnitOfWork, Lead, datetime], object] | None = None
                 ) -> None:
        self.on_confirmed = on_confirmed
        self.on_customer = on_customer
        self.uow = uow
        self.config = config
        self.tokens = tokens
        self.renderer = renderer
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.check_deliverability = check_deliverability
        #: Makes a new lead's public id (the one its links carry): random in production; a
        #: simulation sets a seeded one so that everything keyed by it — an A/B test's
        #: variant — is the same for the same seed.
        self.new_public_id: Callable[[], str] = _random_public_id

    # --- sign-up ------------------------------------------------------------------------

    def sign_up(self, request: SignUp) -> SignUpResult:
        """Record a sign-up and queue its confirmation mail; see the module docstring."""
        now = self.clock()
        try:
            email = normalise_email(request.email,
                                    check_deliverability=self.check_deliverability)
        except InvalidAddress as refused:
            self._count_refused(request, str(refused), now)
            raise
        request, text = self._check_request(request)
        digest = address_hash(email)
        with self.uow() as uow:
            # The form's per-IP limit is for anonymous visitors: an import or a system with
            # an API key counts only against the address's own limit (it protects the person).
            retry = self._count_attempt(uow, digest,
                                        request.ip if request.by_the_person else None, now)
            if retry is not None:
                uow.commit()
                return SignUpResult(Answer.RATE_LIMITED, retry_after=retry)

            lead = uow.lead_by_email(email)
            status = Status(lead.status) if lead is not None else Status.NEW
            kind = ConsentRequest.SIGN_UP if request.by_the_person else ConsentRequest.PUSH
            suppressed = uow.suppression(digest)
            if move(status, kind) is None or (suppressed is not None and (
                    suppressed.reason not in LIFTABLE or not request.by_the_person)):
                uow.commit()  # keep the attempt; say the same as always
                return SignUpResult(Answer.ACCEPTED, LeadState.SUPPRESSED)

            if lead is not None and lead.id is not None:
                # A second sign-up of a known address merges into its lead (data quality).
                uow.add(Event(lead_id=lead.id, type="signup_merged", source=request.source,
                              data={"form": request.form}, occurred_at=now, recorded_at=now))
            if lead is not None and status is Status.CONFIRMED and not request.by_the_person:
                # An import or a system with an API key: trusted to update the profile.
                _merge_profile(lead, _profile_of(request))
                lead.updated_at = now
                attach_account(uow, lead, request.company, request.account, now,
                               overwrite=False)
                lead.qualify_at = now  # what changed is scored on the next tick
                uow.add(lead)
                if request.customer_journey is not None:
                    if lead.sales_stage is not None:
                        raise ConsentError(
                            f"this lead is with sales (stage {lead.sales_stage}); when sales "
                            "closes it as won it enters after-sales")
                    _mark_customer(lead, request)
                    uow.flush()
                    if self.on_customer is not None:
                        self.on_customer(uow, lead, now)
                uow.commit()
                return SignUpResult(Answer.ACCEPTED, LeadState.CONFIRMED)

            if lead is not None and status is Status.CONFIRMED:
                # Somebody typed a confirmed address into the public form: what they wrote
                # waits until the address confirms it; nothing changes before.
                state = LeadState.CONFIRMED
                self._open_request(lead, now)
                lead.pending_profile = {**(lead.pending_profile or {}),
                                        **_profile_of(request)}
            else:
                state = LeadState.PENDING if lead is not None else LeadState.NEW
                if lead is None:
                    lead = Lead(public_id=self.new_public_id(), email=email,
                                status="pending", created_at=now, updated_at=now,
                                source=request.source, campaign=request.campaign)
                lead.status = Status.PENDING
                _merge_profile(lead, _profile_of(request))
                attach_account(uow, lead, request.company, request.account, now,
                               overwrite=False)
                if request.customer_journey is not None:
                    _mark_customer(lead, request)
                self._open_request(lead, now)
                lead.consent_version = request.consent_version
            lead.updated_at = now
            uow.add(lead)
            uow.flush()
            assert lead.id is not None
            for purpose in sorted(request.purposes):
                shown = text.purposes[purpose]  # type: ignore[index]  # checked above
                uow.add(ConsentRecord(
                    lead_id=lead.id, purpose=purpose, action="requested",
                    text_version=request.consent_version,
                    text_sha256=hashlib.sha256(shown.encode("utf-8")).hexdigest(),
                    text_shown=shown, form=request.form, source=request.source,
                    campaign=request.campaign, language=request.language,
                    ip=request.ip, user_agent=_clip(request.user_agent, 512),
                    request_id=lead.doi_nonce, occurred_at=now))
            if request.content is not None:
                # The first action: which content the person asked for decides the stage
                # the journey starts at once the address is confirmed.
                uow.add(Event(lead_id=lead.id, type="form_submitted",
                              content_id=request.content, source=request.source,
                              stage=_first_stage(self.config, request.content),
                              data={"form": request.form}, occurred_at=now, recorded_at=now))
            row = self._doi_mail(uow, lead, now, reminder=False,
                                 update=state is LeadState.CONFIRMED)
            uow.commit()
            assert row.id is not None
            return SignUpResult(Answer.ACCEPTED, state, send_now=[row.id])

    def _open_request(self, lead: Lead, now: datetime) -> None:
        """The lead's open confirmation request: kept while its link is valid, else new."""
        if lead.doi_nonce is None or lead.doi_requested_at is None or \
                now - lead.doi_requested_at > self.config.consent.doi.link_valid_for:
            lead.doi_nonce = secrets.token_urlsafe(16)
            lead.doi_requested_at = now
            lead.doi_reminded_at = None
            if lead.status == Status.CONFIRMED:
                lead.pending_profile = None  # details of an expired request are dropped

    def _count_refused(self, request: SignUp, reason: str, now: datetime) -> None:
        """A refused address counts as an attempt (rate limits) and for data quality; only
        a hash of what was typed is kept."""
        typed = request.email if isinstance(request.email, str) else ""
        with self.uow() as uow:
            uow.add(SignupAttempt(email_hash=address_hash(typed), ip=request.ip, at=now,
                                  refused=_clip(reason, 200)))
            uow.commit()

    def _count_attempt(self, uow: UnitOfWork, digest: str, ip: str | None,
                       now: datetime) -> int | None:
        """Record one attempt; over a limit, the seconds until the oldest counted one ages out.

        Attempts are counted, not mails: the answer must not depend on the address's state.
        """
        rules = self.config.consent.doi
        limits = [(rules.per_address,
                   uow.attempts_since(email_hash=digest, since=now - rules.per_address.per))]
        if ip:
            limits.append((rules.per_ip,
                           uow.attempts_since(ip=ip, since=now - rules.per_ip.per)))
        uow.add(SignupAttempt(email_hash=digest, ip=ip, at=now))
        waits = [seen[-limit.max] + limit.per - now for limit, seen in limits
                 if len(seen) >= limit.max]
        if not waits:
            return None
        return max(1, math.ceil(max(waits).total_seconds()))

    def _check_request(self, request: SignUp) -> tuple[SignUp, ConsentText]:
        """The request with every field checked and normalised (``engine.lead_fields``:
        limits from the columns), and the consent text it refers to."""
        checked: dict[str, Any] = {name: lead_fields.text(name, getattr(request, name))
                                   for name in CHECKED_TEXTS}
        request = replace(request, language=lead_fields.language(request.language) or "de",
                          **checked)
        if request.source not in LEAD_SOURCES:
            raise ConsentError(f'unknown source "{request.source}"; use one of '
                               + ", ".join(LEAD_SOURCES))
        text = self.config.consent.text(request.consent_version)
        if text is None:
            raise ConsentError(f'unknown consent text version "{request.consent_version}"')
        if "email_marketing" not in request.purposes:
            raise ConsentError("consent to e-mail is required to sign up")
        unknown = set(request.purposes) - set(text.purposes)
        if unknown:
            raise ConsentError(f"consent text {text.version} has no purpose "
                               + ", ".join(sorted(unknown)))
        if request.content is not None and request.content not in self.config.content:
            raise ConsentError(f'unknown content "{request.content[:80]}"')
        if request.account and not request.company:
            raise ConsentError("industry, company size and region need the company name")
        if request.customer_journey is not None:
            self.check_customer(request.customer_journey, request.customer_stage)
        if "phone" in request.purposes and not request.phone:
            raise ConsentError("phone consent needs a phone number")
        return request, text

    def check_customer(self, journey_id: str, stage: str | None) -> None:
        """ConsentError unless ``journey_id`` is an after-sales journey with ``stage``."""
        journey = self.config.journeys.get(journey_id)
        if journey is None or journey.model.kind != "after_sales":
            known = [j.id for j in self.config.journeys.values() if j.model.kind == "after_sales"]
            raise ConsentError(f'"{journey_id[:80]}" is not an after-sales journey; use one '
                               f"of: {', '.join(known) or '(none)'}")
        stages = [s.value for s in journey.entry]
        if stage is not None and stage not in stages:
            raise ConsentError(f'journey {journey.id} has no stage "{stage[:10]}"; use one of: '
                               + ", ".join(stages))

    def _doi_mail(self, uow: UnitOfWork, lead: Lead, now: datetime, *,
                  reminder: bool, update: bool = False) -> MailOutbox:
        """The confirmation mail of the lead's open request (``update``: a confirmed lead's
        new details wait for it)."""
        rules = self.config.consent.doi
        assert lead.doi_nonce is not None
        assert lead.doi_requested_at is not None
        token = self.tokens.dumps(Purpose.DOI, lead.doi_nonce, now=lead.doi_requested_at)
        subject = rules.update_subject if update else \
            rules.reminder_subject if reminder else rules.subject
        category = "doi_update" if update else "doi_reminder" if reminder else "doi"
        html, text = self.renderer.render(DOI, doi_context(
            subject=subject, update=update, language=lead.language,
            first_name=lead.first_name, confirm_url=f"{self.base_url}/confirm/{token}",
            valid_days=rules.link_valid_for.days, imprint=self.config.mail.imprint))
        row = MailOutbox(
            idempotency_key=f"{category}:{lead.public_id}:{secrets.token_hex(8)}",
            lead_id=lead.id, kind="transactional", category=category, to_address=lead.email,
            subject=subject, message_id=new_message_id(self.config.mail.message_id_domain),
            headers=self.unsubscribe_headers(lead, now), status="pending", created_at=now)
        uow.add_mail(row, body_html=html, body_text=text)
        uow.flush()
        return row

    def unsubscribe_headers(self, lead: Lead, now: datetime) -> dict[str, str]:
        """RFC 8058 one-click unsubscribe, valid for months (no expiry)."""
        token = self.tokens.dumps(Purpose.UNSUBSCRIBE, lead.public_id, now=now)
        return {"List-Unsubscribe": f"<{self.base_url}/u/{token}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

    # --- confirmation -------------------------------------------------------------------

    def confirm(self, token: str, *, ip: str | None, user_agent: str | None,
                method: str = "doi-button") -> Confirmation:
        """The POST behind the confirmation button. Raises TokenInvalid / TokenExpired.

        A link confirms the request it was sent for, once, and only while that request is
        open: an unsubscribe, a complaint, a bounce or a newer request closes it, so an old
        link never undoes a withdrawal (see ``engine.consent_states``)."""
        now = self.clock()
        request_id = self.tokens.loads(Purpose.DOI, token, now=now,
                                       max_age=self.config.consent.doi.link_valid_for)
        with self.uow() as uow:
            records = uow.consent_request(request_id)
            lead = uow.session.get(Lead, records[0].lead_id) if records else None
            if lead is None or lead.email is None or lead.id is None:
                raise TokenInvalid("the link is not valid")
            if any(r.action == "confirmed" for r in records):
                return (Confirmation.ALREADY if lead.status == Status.CONFIRMED
                        else Confirmation.CLOSED)
            suppressed = uow.suppression(address_hash(lead.email))
            if lead.doi_nonce != request_id or move(lead.status, ConsentRequest.CONFIRM) \
                    is None or (suppressed is not None and suppressed.reason not in LIFTABLE):
                return Confirmation.CLOSED
            asked = {r.purpose: r for r in records if r.action == "requested"}  # latest last
            for purpose, record in sorted(asked.items()):
                uow.add(ConsentRecord(
                    lead_id=lead.id, purpose=purpose, action="confirmed",
                    text_version=record.text_version, text_sha256=record.text_sha256,
                    form=record.form, source=record.source, method=method, ip=ip,
                    user_agent=_clip(user_agent, 512), request_id=request_id,
                    occurred_at=now))
            newly = lead.status != Status.CONFIRMED
            lead.doi_nonce = None  # used up: the same link now says "already confirmed"
            if newly:
                lead.tracking_consent = "tracking" in asked
                lead.phone_consent = "phone" in asked
                lead.status = Status.CONFIRMED
                lead.confirmed_at = now
                lead.unsubscribed_at = None
                lead.mail_paused_until = None
            else:  # the details a sign-up gave for this confirmed address, now confirmed
                lead.tracking_consent = lead.tracking_consent or "tracking" in asked
                lead.phone_consent = lead.phone_consent or "phone" in asked
                told = lead.pending_profile or {}
                _merge_profile(lead, told)
                attach_account(uow, lead, told.get("company"), AccountFacts(
                    **{n: told.get(n) for n in AccountFacts.NAMES}), now, overwrite=False)
                if "language" in told or "persona_id" in told or "job_title" in told \
                        or "company" in told:
                    lead.qualify_at = now
            lead.pending_profile = None
            lead.updated_at = now
            uow.add(lead)
            uow.lift_suppression(address_hash(lead.email), LIFTABLE)
            if newly and self.on_confirmed is not None:  # enrollment, same transaction
                self.on_confirmed(uow, lead, now)
            uow.commit()
            return Confirmation.CONFIRMED if newly else Confirmation.UPDATED

    def renew(self, token: str) -> SignUpResult:
        """A new link for an expired one of the still open request (same limits as a
        sign-up); for a closed request nothing is sent, and the answer is the same."""
        now = self.clock()
        try:
            request_id = self.tokens.loads(Purpose.DOI, token, now=now)
        except TokenExpired as expired:  # pragma: no cover - loads without max_age
            request_id = expired.payload
        with self.uow() as uow:
            records = uow.consent_request(request_id)
            lead = uow.session.get(Lead, records[0].lead_id) if records else None
            if lead is None or lead.email is None:
                return SignUpResult(Answer.ACCEPTED)
            if lead.status != Status.PENDING or lead.doi_nonce != request_id:
                return SignUpResult(Answer.ACCEPTED)
            retry = self._count_attempt(uow, address_hash(lead.email), None, now)
            if retry is not None:
                uow.commit()
                return SignUpResult(Answer.RATE_LIMITED, retry_after=retry)
            lead.doi_requested_at = now  # the same request, a link with a fresh date
            lead.doi_reminded_at = None
            uow.add(lead)
            row = self._doi_mail(uow, lead, now, reminder=False)
            uow.commit()
            assert row.id is not None
            return SignUpResult(Answer.ACCEPTED, LeadState.PENDING, send_now=[row.id])

    # --- unsubscribe --------------------------------------------------------------------

    def unsubscribe(self, token: str, *, choice: Literal["all", "pause"] = "all",
                    method: str, ip: str | None = None,
                    user_agent: str | None = None) -> None:
        """Takes effect before this returns; repeated calls change nothing more."""
        now = self.clock()
        public_id = self.tokens.loads(Purpose.UNSUBSCRIBE, token, now=now)
        with self.uow() as uow:
            lead = uow.lead_by_public_id(public_id)
            if lead is None or lead.email is None:
                return  # erased or purged: nothing left to mail
            assert lead.id is not None
            if choice == "pause":
                if lead.status == Status.CONFIRMED:
                    lead.mail_paused_until = now + PAUSE
                    uow.add(lead, ConsentRecord(
                        lead_id=lead.id, purpose="email_marketing", action="paused",
                        method=method, ip=ip, user_agent=_clip(user_agent, 512),
                        occurred_at=now))
                    uow.commit()
                return
            to = move(lead.status, ConsentRequest.UNSUBSCRIBE)
            if to is None:  # pragma: no cover - every status with an address may unsubscribe
                return
            if lead.status != Status.UNSUBSCRIBED:
                for purpose in WITHDRAWN_BY_UNSUBSCRIBE:
                    uow.add(ConsentRecord(
                        lead_id=lead.id, purpose=purpose, action="withdrawn", method=method,
                        ip=ip, user_agent=_clip(user_agent, 512), occurred_at=now))
                # a CRM that received the lead hears of it (only those subscribed)
                told = {"email": lead.email, "method": method, "at": now.isoformat()}
                webhooks = self.config.sla.webhooks
                crm_events.record(uow, webhooks, lead, "lead.unsubscribed", told, now,
                                  lead_id=lead.id)
                crm_events.record(uow, webhooks, lead, "consent.withdrawn",
                                  {**told, "purposes": list(WITHDRAWN_BY_UNSUBSCRIBE)}, now,
                                  lead_id=lead.id)
            lead.status = to
            if to is Status.UNSUBSCRIBED:
                lead.unsubscribed_at = now
            close_requests(lead)
            lead.tracking_consent = False
            lead.updated_at = now
            uow.add(lead)
            uow.suppress(address_hash(lead.email), "unsubscribed", now)
            uow.cancel_marketing_mail(lead.id, "unsubscribed")
            uow.end_enrollments(lead.id, "unsubscribed", now)
            uow.commit()

    # --- maintenance --------------------------------------------------------------------

    def send_reminders(self, limit: int = 1000) -> list[int]:
        """One reminder at most, while the first link is still valid."""
        rules = self.config.consent.doi
        if rules.reminder_after is None:
            return []
        now = self.clock()
        with self.uow() as uow:
            rows = []
            for lead in uow.leads_due_for_reminder(
                    requested_before=now - rules.reminder_after,
                    requested_after=now - rules.link_valid_for, limit=limit):
                if lead.email is None or uow.suppression(address_hash(lead.email)):
                    continue
                lead.doi_reminded_at = now  # one try: a lead the template fails for is skipped
                uow.add(lead)
                try:
                    rows.append(self._doi_mail(uow, lead, now, reminder=True))
                except Exception as exc:  # the template failed on this lead's values: the
                    # others are reminded; the mail would have been the only reminder anyway
                    log.error("no confirmation reminder for lead %s: the template failed "
                              "(%s: %s)", lead.public_id, type(exc).__name__, exc)
            uow.commit()
            return [row.id for row in rows if row.id is not None]

    def purge_unconfirmed(self, limit: int = 1000) -> int:
        """Delete sign-ups never confirmed within link expiry plus grace (`purge_after`)."""
        now = self.clock()
        with self.uow() as uow:
            leads = uow.unconfirmed_before(now - self.config.consent.doi.purge_after, limit)
            for lead in leads:
                assert lead.id is not None
                uow.delete_lead_completely(lead.id)
            uow.forget_attempts(before=now - timedelta(days=2))
            uow.commit()
            return len(leads)

    # --- proof --------------------------------------------------------------------------

    def proof(self, email: str) -> Proof:
        address = normalise_email(email)
        with self.uow() as uow:
            lead = uow.lead_by_email(address)
            if lead is None or lead.id is None:
                raise RipenError(f"no lead with the address {address}")
            records = uow.consent_records(lead.id)
        entries = [
            ProofEntry(r.occurred_at, r.action, r.purpose, {
                "text version": r.text_version, "text SHA-256": r.text_sha256,
                "form": r.form, "source": r.source, "campaign": r.campaign,
                "method": r.method, "IP": r.ip, "user agent": r.user_agent,
                "DOI Message-ID": r.doi_message_id,
                "DOI sent": r.doi_sent_at.isoformat() if r.doi_sent_at else None,
            }) for r in records]
        texts = {r.text_sha256: r.text_shown for r in records
                 if r.text_sha256 and r.text_shown}
        return Proof(address, lead.status, lead.created_at, lead.source, lead.campaign,
                     entries, texts)


def close_requests(lead: Lead) -> None:
    """A withdrawal closes the lead's open confirmation request: its link confirms nothing
    any more, and details waiting for it are dropped."""
    lead.doi_nonce = None
    lead.pending_profile = None


def _first_stage(config: CompiledConfig, content_id: str) -> str | None:
    item = config.content.get(content_id)
    return item.stages[0].value if item is not None and item.stages else None


PROFILE = ("first_name", "last_name", "job_title", "phone")


def _profile_of(request: SignUp) -> dict[str, Any]:
    """What the person told us about themselves and their company (only what was given)."""
    told: dict[str, Any] = {name: getattr(request, name).strip() for name in PROFILE
                            if getattr(request, name)}
    if request.persona:
        told["persona_id"] = request.persona
    if request.language:
        told["language"] = request.language
    if request.company:
        told["company"] = request.company
        told.update({name: getattr(request.account, name) for name in AccountFacts.NAMES
                     if getattr(request.account, name) is not None})
    return told


def _merge_profile(lead: Lead, told: Mapping[str, Any]) -> None:
    """A repeat sign-up fills in and updates what the person told us; nothing else (the
    company's facts go through ``attach_account``)."""
    for name in (*PROFILE, "persona_id", "language"):
        if told.get(name):
            setattr(lead, name, told[name])


def _mark_customer(lead: Lead, request: SignUp) -> None:
    lead.customer_journey = request.customer_journey
    lead.customer_stage = request.customer_stage


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value else value


__all__ = ["Answer", "ConsentError", "ConsentService", "InvalidAddress", "LeadState",
           "SignUp", "SignUpResult"]
