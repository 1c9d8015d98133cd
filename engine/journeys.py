"""The journey runtime: enrollment, the steps of a journey, stage progression, slowest case.

Pure domain logic over the store, with the clock injected. Every step is processed for
*all* its due enrollments in one batch (``run_step``), in one transaction: the state
change and its outbox row commit together, keyed by (lead, journey version, step), so a
step can never mail a lead twice. Flows (``flows/journeys.py``) only call ``run_step``.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine import abtest
from engine.addresses import address_hash
from engine.clock import Clock
from engine.config.compiler import CompiledConfig, CompiledJourney
from engine.config.content import ContentItem
from engine.config.journey import (
    AdvanceStep,
    BranchStep,
    Condition,
    ExitStep,
    GoalStep,
    SendStep,
    Variant,
    WaitStep,
)
from engine.errors import RipenError
from engine.events import NewEvent, RecordedEvent
from engine.fit import best_persona, fit_grade, fit_points, profile_of
from engine.mail.context import marketing_context
from engine.mail.message import new_message_id
from engine.mail.render import Renderer
from engine.policy import earliest_send
from engine.scoring import Scorer
from engine.stages import JourneyStage
from engine.store.database import StoreError
from engine.store.enrollments import IN_JOURNEY, DueEnrollment, Recipient
from engine.store.mailqueue import Claimed
from engine.store.tables import (
    Account,
    Enrollment,
    Event,
    JourneyPause,
    Lead,
    MailOutbox,
    SendDeferral,
    SentContent,
    StageEntry,
    TrackedLink,
)
from engine.store.uow import UnitOfWork, UowFactory
from engine.tokens import Purpose, Tokens
from engine.versions import VersionCache, migrate, register


class Place(Protocol):
    """Where an enrollment stands: an ORM ``Enrollment`` or a send batch's ``DueEnrollment``."""

    step_id: str
    step_entered_at: datetime | None
    due_at: datetime | None
    status: str
    exit_reason: str | None
    ended_at: datetime | None


log = logging.getLogger(__name__)
ENGAGEMENT = frozenset({"click", "download", "visit", "form_submitted", "webinar_registered",
                        "webinar_attended", "reply", "contact_request"})
ORDER = list(JourneyStage)


@dataclass(frozen=True)
class Recorded:
    event_id: int
    handover_id: int | None = None  # the event handed the lead to sales (fast lane, MQL)


#: Called in the events' transaction with the leads and their new events: scores them and
#: may hand leads over (engine.handover); returns the handovers by lead id.
Qualifier = Callable[[UnitOfWork, dict[int, Lead], dict[int, list[RecordedEvent]],
                      datetime], dict[int, Any]]


#: Hands a send batch's committed mails (leased to ``owner``) to the sender; returns what
#: became of them (sent, retry, failed …).
Dispatch = Callable[[Sequence[Claimed], str], Counter[str]]


@dataclass
class StepReport:
    journey: str
    step: str
    counts: Counter[str] = field(default_factory=Counter)
    #: What became of the mails dispatched right after their batch committed.
    mail: Counter[str] = field(default_factory=Counter)
    #: Why leads were deferred or quarantined ("deferred: quiet_hours", "quarantined: …").
    why: Counter[str] = field(default_factory=Counter)


def problem(step_id: str, exc: BaseException) -> str:
    """Why a step could not be done for a lead, as an operator reads it (quarantine)."""
    where = getattr(exc, "name", None) or getattr(exc, "filename", None)
    line = getattr(exc, "lineno", None)
    at = f" ({where}{f', line {line}' if line else ''})" if isinstance(where, str) else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"step {step_id}: {type(exc).__name__}{at}: {text}"[:1000]


def _quarantine(place: Any, reason: str, now: datetime, report: StepReport) -> str:
    """The enrollment stops at its step with ``reason`` until an operator retries it."""
    log.warning("lead quarantined at %s %s: %s", report.journey, report.step, reason,
                extra={"journey": report.journey, "step": report.step,
                       "lead": place.lead_id, "enrollment": place.id})
    place.status = "quarantined"
    place.due_at = None
    place.quarantine_reason = reason
    if isinstance(place, Enrollment):
        place.quarantined_at = now
    report.why[f"quarantined: {reason}"] += 1
    return "quarantined"


@dataclass(frozen=True)
class JourneyWork:
    """What a tick has for one journey version: its due steps (with how many are due) and
    whether its slowest case has leads to take out."""

    journey: CompiledJourney
    due: dict[str, int] = field(default_factory=dict)
    slowest_case: bool = False


@dataclass(frozen=True)
class TickPlan:
    """The journey versions with work at a time, and the paused journeys left out."""

    work: list[JourneyWork]
    paused: dict[str, datetime]            # journey id → paused since
    #: (journey, version, why) with due leads that cannot run: not stored, or no longer
    #: compiling against the configuration (a pinned version whose persona was removed …)
    unknown: list[tuple[str, str, str]]


class JourneyRuntime:
    def __init__(self, *, uow: UowFactory, config: CompiledConfig, tokens: Tokens,
                 renderer: Renderer, clock: Clock, base_url: str) -> None:
        self.uow = uow
        self.config = config
        self.tokens = tokens
        self.renderer = renderer
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        caps = [cap.per for cap in config.policy.frequency_caps]
        self._cap_window = max(caps, default=timedelta(0))
        self.versions = VersionCache(config)
        self.qualifier: Qualifier | None = None
        self.scorer = Scorer(config)
        #: Set by the composition root: a send step's mails go out right after its batch
        #: commits, leased for ``lease`` (None: they wait for the outbox sender).
        self.dispatch: Dispatch | None = None
        self.lease = timedelta(minutes=5)

    # --- versions -----------------------------------------------------------------------

    def go_live(self) -> tuple[list[str], int]:
        """Make the configured versions live; apply `migrate` to leads in flight."""
        now = self.clock()
        with self.uow() as uow:
            added = register(uow, self.config, now)
            uow.flush()
            moved = migrate(uow, self.config, now)
            uow.commit()
        return added, moved

    def plan(self, now: datetime) -> TickPlan:
        """Which journey versions have work at ``now`` (two queries for all of them): due
        steps, and leads the slowest case takes out; paused journeys are left out."""
        with self.uow() as uow:
            due = uow.due_step_counts(now=now)
            oldest = uow.oldest_engagement()
            paused = {j: row.paused_at for j, row in uow.paused_journeys().items()}
            compiled: dict[tuple[str, str], CompiledJourney | RipenError | None] = {}
            for journey_id, version, _, _ in due:
                try:
                    compiled[(journey_id, version)] = self.versions.get(uow, journey_id,
                                                                        version)
                except RipenError as exc:  # e.g. a pinned version whose persona is gone
                    compiled[(journey_id, version)] = exc
        work: dict[tuple[str, str], JourneyWork] = {}
        unknown: list[tuple[str, str, str]] = []
        for journey_id, version, step_id, count in due:
            journey = compiled[(journey_id, version)]
            if journey_id in paused:
                continue
            if not isinstance(journey, CompiledJourney) or step_id not in journey.steps:
                why = str(journey).splitlines()[0] if isinstance(journey, RipenError) else \
                    "this version is not stored" if journey is None else \
                    f"it has no step {step_id}"
                unknown.append((journey_id, version, why))
                continue
            work.setdefault((journey_id, version), JourneyWork(journey)).due[step_id] = count
        for journey in self.config.journeys.values():
            since = oldest.get(journey.id)
            if journey.id in paused or since is None or \
                    since > now - journey.model.slowest_case.after:
                continue
            key = (journey.id, journey.version)
            current = work.get(key, JourneyWork(journey))
            work[key] = JourneyWork(journey, current.due, slowest_case=True)
        return TickPlan([work[key] for key in sorted(work)], paused, sorted(set(unknown)))

    def pause(self, journey_id: str, *, now: datetime, note: str | None = None) -> bool:
        """Pause a configured journey: its steps stop running (no mail, no moves) until it
        is resumed. False when it was paused already."""
        if journey_id not in self.config.journeys:
            raise RipenError(f'no journey "{journey_id[:80]}"; the journeys are: '
                             + ", ".join(sorted(self.config.journeys)))
        with self.uow() as uow:
            if journey_id in uow.paused_journeys():
                return False
            uow.add(JourneyPause(journey_id=journey_id, paused_at=now,
                                 note=note[:200] if note else None))
            uow.commit()
            return True

    def resume(self, journey_id: str) -> bool:
        """Resume a paused journey (its due steps run at the next tick); False when it was
        not paused."""
        with self.uow() as uow:
            row = uow.paused_journeys().get(journey_id)
            if row is None:
                return False
            uow.session.delete(row)
            uow.commit()
            return True

    def paused(self) -> dict[str, datetime]:
        with self.uow() as uow:
            return {j: row.paused_at for j, row in uow.paused_journeys().items()}

    def tick(self, *, limit: int = 1000, slowest_case: bool = True) -> list[StepReport]:
        """One tick without Prefect: go live, every due step of every version, slowest case
        (unless ``slowest_case`` is False: it counts in days, a simulation runs it daily)."""
        self.go_live()
        reports = []
        with self.uow() as uow:
            due = [(j, v, s) for j, v, s, _ in uow.due_step_counts(now=self.clock())]
            journeys = {(j, v): self.versions.get(uow, j, v) for j, v, _ in due}
            paused = set(uow.paused_journeys())
        for journey_id, version, step_id in due:
            journey = journeys[(journey_id, version)]
            if journey is not None and step_id in journey.steps and journey_id not in paused:
                reports.append(self.run_step(journey, step_id, limit=limit))
        if slowest_case:
            for journey in self.config.journeys.values():
                if journey.id not in paused:
                    reports.append(self.slowest_case(journey, limit=limit))
        return reports

    # --- enrollment ---------------------------------------------------------------------

    def enroll_confirmed(self, uow: UnitOfWork, lead: Lead, now: datetime) -> Enrollment | None:
        """A newly confirmed lead enters the journey of its persona (a form choice wins);
        an existing customer enters its after-sales journey."""
        if lead.customer_journey is not None:
            return self.enroll_customer(uow, lead, now)
        persona_id = lead.persona_id
        if persona_id not in self.config.personas:
            account = uow.session.get(Account, lead.account_id) if lead.account_id else None
            persona = best_persona(profile_of(lead, account),
                                   list(self.config.personas.values()), self.config.scoring)
            persona_id = persona.id if persona else None
        if persona_id is None:
            return None  # fits no persona: no nurturing content fits it either
        lead.persona_id = persona_id
        uow.add(lead)
        journey = next((j for j in self.config.journeys.values()
                        if j.model.kind == "nurture" and j.model.persona == persona_id), None)
        if journey is None:
            return None
        return self.enroll(uow, lead, journey, now=now,
                           stage=self.implied_stage(uow, lead, journey))

    def enroll_customer(self, uow: UnitOfWork, lead: Lead, now: datetime) -> Enrollment | None:
        """An existing customer leaves nurturing and enters its after-sales journey (AFS,
        WIK or CUS, as marked; the journey's first stage otherwise)."""
        assert lead.id is not None
        journey = self.config.journeys.get(lead.customer_journey or "")
        if journey is None or lead.sales_stage is not None:
            return None  # with sales: a won close starts after-sales (config/sla.yaml)
        previous = uow.last_enrollment(lead.id, journey.id)
        if previous is not None and previous.status in IN_JOURNEY:
            return None  # already there
        uow.end_enrollments(lead.id, "became_customer", now)
        stage = JourneyStage(lead.customer_stage) if lead.customer_stage else None
        return self.enroll(uow, lead, journey, now=now, stage=stage)

    def implied_stage(self, uow: UnitOfWork, lead: Lead,
                      journey: CompiledJourney) -> JourneyStage | None:
        """The stage the lead's first action implies: the content it first asked for.

        Someone whose first request was an evaluation checklist is past Informieren; the
        journey starts at the latest of that item's stages the journey declares.
        """
        assert lead.id is not None
        for event in uow.events_since(lead.id, lead.created_at):
            if event.is_scanner or event.type not in ENGAGEMENT:
                continue
            stages = [s for s in _stages(self.config, event.content_id) if s in journey.entry]
            if stages:
                return max(stages, key=ORDER.index)
        return None

    def enroll(self, uow: UnitOfWork, lead: Lead, journey: CompiledJourney, *, now: datetime,
               stage: JourneyStage | None = None) -> Enrollment | None:
        """One active enrollment per lead and journey; re-entry only as the YAML allows."""
        assert lead.id is not None
        previous = uow.last_enrollment(lead.id, journey.id)
        if previous is not None:
            if previous.status in IN_JOURNEY:
                return None
            again = journey.model.reenroll_after
            if again is None or (previous.ended_at and previous.ended_at + again > now):
                return None
        start = stage if stage is not None and stage in journey.entry else next(iter(journey.entry))
        enrollment = Enrollment(lead_id=lead.id, journey_id=journey.id,
                                journey_version=journey.version, stage=start.value,
                                step_id=journey.entry[start], stage_entered_at=now,
                                started_at=now)
        self._enter(enrollment, journey, journey.entry[start], now)
        uow.add(enrollment)
        uow.insert_later(StageEntry, {"lead_id": lead.id, "journey_id": journey.id,
                                      "stage": start.value, "entered_at": now})
        _raise_funnel_stage(lead, start, now)
        lead.qualify_at = now  # a new lead (or a recycled one) is scored on the next tick
        uow.add(lead)
        return enrollment

    # --- running ------------------------------------------------------------------------

    def run_step(self, journey: CompiledJourney, step_id: str, *,
                 limit: int = 1000) -> StepReport:
        """All due enrollments at ``step_id``, in batches of ``limit``, one commit per batch."""
        step = journey.steps[step_id]
        if isinstance(step, SendStep):
            return self._run_sends(journey, step, limit=limit)
        report = StepReport(journey.id, step_id)
        while True:
            now = self.clock()
            with self.uow() as uow:
                batch = uow.claim_enrollments(journey_id=journey.id, version=journey.version,
                                              step_id=step_id, now=now, limit=limit)
                if not batch:
                    return report
                leads = uow.leads_by_id(e.lead_id for e in batch)
                for enrollment in batch:
                    lead = leads.get(enrollment.lead_id)
                    if lead is None or lead.status != "confirmed":
                        self._end(enrollment, "no_consent", now)
                        report.counts["ended"] += 1
                    else:
                        try:
                            outcome = self._move(uow, now, journey, step, enrollment, lead)
                        except StoreError:
                            raise  # the database failed: the whole batch is tried again
                        except Exception as exc:  # this lead's data: it stays with the lead
                            outcome = _quarantine(enrollment, problem(step.id, exc), now,
                                                  report)
                        report.counts[outcome] += 1
                    uow.add(enrollment)
                uow.commit()
            if len(batch) < limit:
                return report

    def _move(self, uow: UnitOfWork, now: datetime, journey: CompiledJourney, step: Any,
              enrollment: Enrollment, lead: Lead) -> str:
        """One lead's move at a step that sends nothing; what happened."""
        if isinstance(step, BranchStep):
            return self._branch(uow, now, journey, step, enrollment, lead)
        if isinstance(step, WaitStep | GoalStep):
            if isinstance(step, GoalStep):
                uow.add(Event(lead_id=lead.id or 0, type="goal",
                              data={"goal": step.goal, "journey": journey.id},
                              occurred_at=now, recorded_at=now))
            self._next(enrollment, journey, now)
            return "moved"
        if isinstance(step, AdvanceStep):
            self._advance(uow, enrollment, lead, journey, step.advance, now)
            return "advanced"
        assert isinstance(step, ExitStep)
        self._end(enrollment, step.exit, now)
        return "exited"

    def _run_sends(self, journey: CompiledJourney, step: SendStep, *,
                   limit: int) -> StepReport:
        """A send step: per batch, the recipients and their recent sends are read in a few
        queries, each mail is decided and rendered, and the outbox rows, links, sent-content
        rows, deferrals and the enrollments' moves are written one statement each.

        With a ``dispatch``, the batch's mails are written leased to this run and handed
        over right after the commit (consent, pause and suppression were checked in the
        transaction that decided them); without, they wait in the outbox for the sender.
        """
        report = StepReport(journey.id, step.id)
        owner = secrets.token_hex(8)
        while True:
            now = self.clock()
            with self.uow() as uow:
                claimed_due = uow.claim_due(journey_id=journey.id, version=journey.version,
                                            step_id=step.id, now=now, limit=limit)
                if not claimed_due:
                    return report
                # a lead another transaction holds (another worker deciding its mail in
                # another journey, or its events being recorded) stays due for a later
                # batch: two deciding at once would each miss the other's mail
                busy = uow.hold_leads(place.lead_id for place in claimed_due)
                due = [place for place in claimed_due if place.lead_id not in busy]
                if busy:
                    report.why["left for a later batch: the lead was busy in another "
                               "transaction"] += len(claimed_due) - len(due)
                    if not due:  # all of them: the next tick, rather than claim them again
                        return report
                lease = (owner, now + self.lease) if self.dispatch is not None else None
                batch = _SendBatch(uow, uow.recipients(e.lead_id for e in due), now, self,
                                   lease)
                for place in due:
                    lead = batch.leads.get(place.lead_id)
                    if lead is None or lead.status != "confirmed":
                        self._end(place, "no_consent", now)
                        report.counts["ended"] += 1
                        continue
                    try:
                        outcome = self._send(batch, journey, step, place, lead, report)
                    except Exception as exc:  # the lead's data or the template: it stays
                        # with this lead (nothing of its mail was kept); the batch goes on
                        outcome = _quarantine(place, problem(step.id, exc), now, report)
                        batch.quarantined.append(place)
                    report.counts[outcome] += 1
                batch.write([place.changes() for place in due])
                claimed = uow.claimed_by_key([m for m in batch.mails
                                              if m["status"] == "sending"]) if lease else []
                uow.commit()
            if claimed and self.dispatch is not None:
                report.mail.update(self.dispatch(claimed, owner))
            if len(claimed_due) < limit:
                return report

    def _send(self, batch: _SendBatch, journey: CompiledJourney, step: SendStep,
              place: DueEnrollment, lead: Recipient, report: StepReport) -> str:
        variant = self._variant(batch, journey, step, lead) if step.send.variants else None
        content = self.config.content[variant.content if variant and variant.content
                                      else step.send.content]
        if (lead.id, content.id) in batch.sent:
            self._next(place, journey, batch.now)
            return "skipped_already_sent"
        when, reason = earliest_send(now=batch.now, policy=self.config.policy,
                                     recent=batch.recent.get(lead.id, []),
                                     time_zone=lead.time_zone)
        if lead.mail_paused_until is not None and lead.mail_paused_until > when:
            when, reason = lead.mail_paused_until, "paused"
        if when > batch.now:
            place.due_at = when
            batch.deferrals.append({"lead_id": lead.id, "journey_id": journey.id,
                                    "step_id": step.id, "reason": reason or "paused",
                                    "deferred_at": batch.now, "until": when})
            report.why[f"deferred: {reason or 'paused'}"] += 1
            return "deferred"
        self._write_mail(batch, journey, step, lead, content, variant)
        if variant is not None:
            report.why[f"sent as variant {variant.id}"] += 1
        batch.sent.add((lead.id, content.id))
        batch.recent.setdefault(lead.id, []).append(batch.now)
        self._next(place, journey, batch.now)
        return "sent"

    def _variant(self, batch: _SendBatch, journey: CompiledJourney, step: SendStep,
                 lead: Recipient) -> Variant:
        """The lead's arm of the step's A/B test: the winner once the winner rule has named
        one (looked up once per batch), else its own stable assignment."""
        if step.send.winner is not None:
            key = (journey.id, step.id)
            if key not in batch.winners:
                batch.winners[key] = abtest.step_result(batch.uow, journey, step.id).winner
            winner = batch.winners[key]
            if winner is not None:
                return next(v for v in step.send.variants if v.id == winner)
        return abtest.assign(step.send, journey.id, step.id, lead.public_id)

    def _write_mail(self, batch: _SendBatch, journey: CompiledJourney, step: SendStep,
                    lead: Recipient, content: ContentItem, variant: Variant | None) -> None:
        assert lead.email is not None
        now = batch.now
        key = f"journey:{journey.id}@{journey.version}:{step.id}:{lead.id}"
        offer = self.config.content.get(step.send.fast_lane_offer or "")
        rows: list[dict[str, Any]] = []  # kept only once the mail rendered
        links = {item.id: self._link(rows, now, lead.id, item, key)
                 for item in (content, offer) if item is not None}
        persona = self.config.personas.get(lead.persona_id or "")
        company = batch.accounts.get(lead.account_id) if lead.account_id else None
        subject = content.title
        fast = self.tokens.dumps(Purpose.FAST_LANE, lead.public_id, now=now)
        unsubscribe = self.tokens.dumps(Purpose.UNSUBSCRIBE, lead.public_id, now=now)
        pixel = None
        if lead.tracking_consent:  # opens are tracked only with the lead's consent
            token_id = secrets.token_urlsafe(12)
            rows.append({"token_id": token_id, "lead_id": lead.id,
                                "content_id": content.id, "kind": "open", "url": "",
                                "outbox_key": key, "created_at": now})
            pixel = f"{self.base_url}/o/{self.tokens.dumps(Purpose.OPEN, token_id, now=now)}.gif"
        context = marketing_context(
            subject=subject,
            lead={"first_name": lead.first_name, "last_name": lead.last_name,
                  "job_title": lead.job_title, "company": company,
                  "language": lead.language},
            persona=persona, content=content, content_url=links[content.id],
            fast_lane_offer=offer, fast_lane_offer_url=links[offer.id] if offer else None,
            fast_lane_url=f"{self.base_url}/fast-lane/{fast}",
            unsubscribe_url=f"{self.base_url}/u/{unsubscribe}", identity=self.config.mail,
            open_pixel_url=pixel)
        line = variant.subject if variant and variant.subject else step.send.subject
        if line:  # a template of its own, with the mail's variables
            subject = context["subject"] = self.renderer.render_line(line, context)
        html, text = self.renderer.render(
            variant.template if variant and variant.template else step.send.template, context)
        batch.links.extend(rows)
        suppressed = batch.suppressed.get(address_hash(lead.email))
        status, error = ("suppressed", f"address suppressed ({suppressed})") if suppressed \
            else ("sending", None) if batch.lease else ("pending", None)
        owner, until = batch.lease if batch.lease and not suppressed else (None, None)
        batch.mails.append({
            "idempotency_key": key, "lead_id": lead.id, "kind": "marketing",
            "category": "nurture", "to_address": lead.email, "subject": subject,
            "message_id": new_message_id(self.config.mail.message_id_domain),
            "body_html": html, "body_text": text,
            "headers": {"List-Unsubscribe": f"<{self.base_url}/u/{unsubscribe}>",
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            "created_at": now, "status": status, "last_error": error, "lease_owner": owner,
            "lease_until": until, "variant": variant.id if variant else None})
        batch.sent_rows.append({"lead_id": lead.id, "content_id": content.id,
                                "journey_id": journey.id, "step_id": step.id, "sent_at": now})

    def _link(self, rows: list[dict[str, Any]], now: datetime, lead_id: int,
              item: ContentItem, key: str) -> str:
        token_id = secrets.token_urlsafe(12)
        rows.append({"token_id": token_id, "lead_id": lead_id, "content_id": item.id,
                            "kind": "fast_lane_content" if item.fast_lane else "content",
                            "url": str(item.url), "outbox_key": key, "created_at": now})
        return f"{self.base_url}/c/{self.tokens.dumps(Purpose.CLICK, token_id, now=now)}"

    def _branch(self, uow: UnitOfWork, now: datetime, journey: CompiledJourney,
                step: BranchStep, enrollment: Enrollment, lead: Lead) -> str:
        since = enrollment.step_entered_at or enrollment.stage_entered_at
        if self.condition_met(uow, lead, step.branch.when, since):
            self._goto(enrollment, journey, journey.target(step.id, step.branch.then), now)
            return "branch_yes"
        if now >= since + step.branch.within:
            self._goto(enrollment, journey, journey.target(step.id, step.branch.otherwise), now)
            return "branch_no"
        enrollment.due_at = since + step.branch.within
        return "waiting"

    def condition_met(self, uow: UnitOfWork, lead: Lead, when: Condition,
                      since: datetime) -> bool:
        assert lead.id is not None
        if when.event is not None:
            for event in uow.events_since(lead.id, since):
                if event.type != when.event:
                    continue
                if when.content and event.content_id != when.content:
                    continue
                if when.stage and when.stage not in _stages(self.config, event.content_id):
                    continue
                return True
            return False
        if when.engagement_at_least is not None:
            return self.engagement(uow, lead) >= when.engagement_at_least
        account = uow.session.get(Account, lead.account_id) if lead.account_id else None
        persona = self.config.personas.get(lead.persona_id or "")
        if persona is None:
            return False
        points = fit_points(profile_of(lead, account), persona, self.config.scoring)
        return fit_grade(points, self.config.scoring) <= (when.fit_at_least or "D")

    def engagement(self, uow: UnitOfWork, lead: Lead) -> float:
        """Implicit points of all the lead's events, with half-life decay (the same points
        the score ledger holds, read from the events so sign-up events count too)."""
        assert lead.id is not None
        implicit, now = self.config.scoring.implicit, self.clock()
        total = 0.0
        for event in uow.events_since(lead.id, lead.created_at):
            earned = self.scorer.implicit_points(event)
            if earned is not None:
                age = (now - event.occurred_at) / implicit.half_life
                total += earned[1] * 0.5 ** max(age, 0.0)
        return total

    # --- moving -------------------------------------------------------------------------

    def _enter(self, enrollment: Place, journey: CompiledJourney, step_id: str,
               now: datetime) -> None:
        step = journey.steps[step_id]
        enrollment.step_id = step_id
        enrollment.step_entered_at = now
        if isinstance(step, WaitStep):
            enrollment.due_at = now + step.wait
        elif isinstance(step, BranchStep):
            enrollment.due_at = now + step.branch.within
        else:
            enrollment.due_at = now

    def _next(self, enrollment: Place, journey: CompiledJourney, now: datetime) -> None:
        self._goto(enrollment, journey, journey.following[enrollment.step_id], now)

    def _goto(self, enrollment: Place, journey: CompiledJourney, target: str | None,
              now: datetime) -> None:
        if target is None:
            enrollment.due_at = None  # end of the stage's steps: wait for engagement
        else:
            self._enter(enrollment, journey, target, now)

    def _advance(self, uow: UnitOfWork, enrollment: Enrollment, lead: Lead,
                 journey: CompiledJourney, stage: JourneyStage, now: datetime) -> None:
        current = self.config.journeys.get(journey.id)
        if current is not None and current.version != journey.version and \
                current.model.in_flight.policy == "drain":
            journey = current  # draining: the next stage is already the new version's
            enrollment.journey_version = current.version
            if stage not in journey.entry:
                stage = next(iter(journey.entry))
        enrollment.stage = stage.value
        enrollment.stage_entered_at = now
        uow.insert_later(StageEntry, {"lead_id": enrollment.lead_id, "journey_id": journey.id,
                                      "stage": stage.value, "entered_at": now})
        self._enter(enrollment, journey, journey.entry[stage], now)
        _raise_funnel_stage(lead, stage, now)
        lead.qualify_at = now  # a stage rule (e.g. BEW with a download) may now hold

    def _end(self, enrollment: Place, reason: str, now: datetime) -> None:
        enrollment.status = "exited"
        enrollment.exit_reason = reason
        enrollment.ended_at = now
        enrollment.due_at = None

    def slowest_case(self, journey: CompiledJourney, *, limit: int = 1000) -> StepReport:
        """Leads without engagement for `slowest_case.after` leave (or move on)."""
        report = StepReport(journey.id, "slowest-case")
        rule = journey.model.slowest_case
        now = self.clock()
        with self.uow() as uow:
            dormant = uow.dormant_enrollments(journey_id=journey.id, before=now - rule.after,
                                              limit=limit)
            leads = uow.leads_by_id(e.lead_id for e in dormant)
            for enrollment in dormant:
                self._end(enrollment, "slowest_case", now)
                uow.add(enrollment)
                report.counts["slowest_case"] += 1
                target = self.config.journeys.get(rule.move_to or "")
                lead = leads.get(enrollment.lead_id)
                if target is not None and lead is not None:
                    uow.flush()
                    self.enroll(uow, lead, target, now=now)
            uow.commit()
        return report

    # --- events -------------------------------------------------------------------------

    def record_event(self, *, lead_id: int, type: str, content_id: str | None = None,
                     occurred_at: datetime | None = None, source: str | None = None,
                     data: dict[str, Any] | None = None, is_scanner: bool = False,
                     idempotency_key: str | None = None) -> Recorded | None:
        """Store an event; engagement moves the lead through its journeys' stages, and the
        qualifier scores it and may hand the lead to sales at once (fast lane, MQL)."""
        return self.record_events([NewEvent(
            lead_id=lead_id, type=type, content_id=content_id, occurred_at=occurred_at,
            source=source, data=data, is_scanner=is_scanner,
            idempotency_key=idempotency_key)])[0]

    def record_events(self, events: Sequence[NewEvent]) -> list[Recorded | None]:
        """Many events in one transaction, each with the effect it would have alone (stage
        moves in order); each lead is scored and qualified once, after all its events.

        ``None`` for an event already recorded (same idempotency key) or of no known lead.
        The events are written in one statement; what a stage's exit rule counts is read
        once per batch and then counted on in memory, event by event.
        """
        now = self.clock()
        with self.uow() as uow:
            uow.plan_for_values()  # key and lead lookups in tables that keep growing
            seen = uow.event_keys([e.idempotency_key for e in events if e.idempotency_key])
            leads = uow.leads_by_id({e.lead_id for e in events})
            enrollments = uow.active_enrollments_of(list(leads))
            counted = uow.stage_engagement([
                e for found in enrollments.values() for e in found
                if self._counts_engagement(uow, e)])
            rows: list[dict[str, Any]] = []
            positions: list[int] = []
            for position, new in enumerate(events):
                if new.lead_id not in leads or (new.idempotency_key and
                                                new.idempotency_key in seen):
                    continue
                if new.idempotency_key:
                    seen.add(new.idempotency_key)
                item = self.config.content.get(new.content_id or "")
                rows.append({"lead_id": new.lead_id, "type": new.type,
                             "content_id": new.content_id,
                             "stage": item.stages[0].value if item else None,
                             "source": new.source, "is_scanner": new.is_scanner,
                             "idempotency_key": new.idempotency_key, "data": new.data or {},
                             "occurred_at": new.occurred_at or now, "recorded_at": now})
                positions.append(position)
            stored: list[RecordedEvent | None] = [None] * len(events)
            for position, row, event_id in zip(positions, rows, uow.insert_events(rows),
                                               strict=True):
                stored[position] = RecordedEvent(
                    id=event_id, lead_id=row["lead_id"], type=row["type"],
                    content_id=row["content_id"], stage=row["stage"],
                    is_scanner=row["is_scanner"], data=row["data"],
                    occurred_at=row["occurred_at"])
            by_lead: dict[int, list[RecordedEvent]] = {}
            for done in stored:
                if done is None:
                    continue
                by_lead.setdefault(done.lead_id, []).append(done)
                if done.is_scanner:
                    continue
                item = self.config.content.get(done.content_id or "")
                for enrollment in enrollments.get(done.lead_id, []):
                    if enrollment.status != "active":
                        continue
                    if done.occurred_at >= enrollment.stage_entered_at:
                        counted.setdefault((enrollment.id or 0, enrollment.stage_entered_at),
                                           Counter())[(done.type, done.content_id)] += 1
                    if done.type in ENGAGEMENT:
                        self._on_engagement(uow, enrollment, leads[done.lead_id], item, done,
                                            now, counted)
            handovers: dict[int, int | None] = {}
            if self.qualifier is not None:
                uow.flush()
                made = self.qualifier(uow, leads, by_lead, now)
                uow.flush()
                handovers = {lead_id: getattr(h, "id", None) for lead_id, h in made.items()}
            uow.commit()
            return [Recorded(e.id, handovers.get(e.lead_id)) if e is not None else None
                    for e in stored]

    def _counts_engagement(self, uow: UnitOfWork, enrollment: Enrollment) -> bool:
        """Whether the enrollment's stage has an exit rule that counts events (the last
        stage without one waits for the MQL rule)."""
        journey = self.versions.get(uow, enrollment.journey_id, enrollment.journey_version)
        if journey is None:
            return False
        plan = getattr(journey.model.stages, enrollment.stage, None)
        declared = list(journey.entry)
        current = JourneyStage(enrollment.stage)
        return (plan is not None and plan.exit is not None) or \
            (current in declared and declared.index(current) + 1 < len(declared))

    def _on_engagement(self, uow: UnitOfWork, enrollment: Enrollment, lead: Lead,
                       item: ContentItem | None, event: RecordedEvent, now: datetime,
                       counted: dict[tuple[int, datetime], Counter[tuple[str, str | None]]]
                       ) -> None:
        """``counted``: the lead's non-scanner events since it entered its stage, by
        (type, content), up to this one (keyed by enrollment and stage entry: a stage
        move starts a new count)."""
        journey = self.versions.get(uow, enrollment.journey_id, enrollment.journey_version)
        enrollment.last_engaged_at = event.occurred_at
        uow.add(enrollment)
        if journey is None:
            return
        if isinstance(journey.steps.get(enrollment.step_id), BranchStep):
            enrollment.due_at = now  # re-check the branch on the next tick, not at its timeout
        current = JourneyStage(enrollment.stage)
        declared = list(journey.entry)
        if item is None:
            return
        plan = getattr(journey.model.stages, current.value)
        rule = plan.exit if plan is not None else None
        later = [s for s in item.stages if s in declared and ORDER.index(s) > ORDER.index(current)]
        if later and (rule is None or rule.skip_ahead):
            self._advance(uow, enrollment, lead, journey, max(later, key=ORDER.index), now)
            uow.add(lead)
            return
        if current not in item.stages:
            return
        position = declared.index(current)
        is_last = position + 1 >= len(declared)
        if rule is None and is_last:
            return  # the last stage waits for the MQL rule
        events = rule.events if rule else ["click", "download"]
        needed = rule.engaged if rule else 1
        so_far = counted.get((enrollment.id or 0, enrollment.stage_entered_at), Counter())
        engaged = sum(number for (kind, content_id), number in so_far.items()
                      if kind in events and current in _stages(self.config, content_id))
        if engaged >= needed:
            target = rule.to if rule and rule.to else (None if is_last else declared[position + 1])
            if target is not None:
                self._advance(uow, enrollment, lead, journey, target, now)
                uow.add(lead)


def _raise_funnel_stage(lead: Lead, stage: JourneyStage, now: datetime) -> None:
    """The lead's funnel stage only moves forward (a recycle journey does not demote it)."""
    current = lead.funnel_stage
    if current not in JourneyStage.__members__ or \
            ORDER.index(stage) > ORDER.index(JourneyStage(current)):
        lead.funnel_stage = stage.value
        lead.updated_at = now


def _stages(config: CompiledConfig, content_id: str | None) -> list[JourneyStage]:
    item = config.content.get(content_id or "")
    return list(item.stages) if item else []


class _SendBatch:
    """What one batch of a send step needs about its recipients, read once, and the rows it
    writes (thousands per tick: plain values, one statement per table)."""

    def __init__(self, uow: UnitOfWork, leads: dict[int, Recipient], now: datetime,
                 runtime: JourneyRuntime, lease: tuple[str, datetime] | None) -> None:
        self.uow = uow
        self.now = now
        self.leads = leads
        self.lease = lease  # (owner, until): the mails are handed to the sender at once
        ids = list(leads)
        self.suppressed = uow.suppressions_of(address_hash(lead.email)
                                              for lead in leads.values() if lead.email)
        self.sent = uow.sent_content_of(ids)
        self.recent = uow.marketing_sends_since(ids, now - runtime._cap_window) \
            if runtime._cap_window else {}
        self.accounts = uow.account_names(lead.account_id for lead in leads.values()
                                          if lead.account_id is not None)
        self.mails: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        self.sent_rows: list[dict[str, Any]] = []
        self.winners: dict[tuple[str, str], str | None] = {}  # A/B winners, per step
        self.deferrals: list[dict[str, Any]] = []
        self.quarantined: list[DueEnrollment] = []

    def write(self, moves: list[dict[str, Any]]) -> None:
        """The batch's mails, tracked links, sent-content rows, deferrals and the moves of
        its enrollments, one statement each."""
        self.uow.insert_rows(TrackedLink, self.links)
        self.uow.insert_rows(MailOutbox, self.mails)
        self.uow.insert_rows(SentContent, self.sent_rows)
        self.uow.insert_rows(SendDeferral, self.deferrals)
        self.uow.update_rows(Enrollment, moves)
        self.uow.update_rows(Enrollment, [
            {"id": place.id, "quarantined_at": self.now,
             "quarantine_reason": place.quarantine_reason} for place in self.quarantined])
