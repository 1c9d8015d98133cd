"""Qualification and handover: the MQL rule, the sales fast lane, routing, the signed
webhook and the rep's notification — and the loop back when sales rejects or loses.

A handover is one transaction: the handover row, the lead's sales stage (MQL), its paused
journeys, one webhook delivery per subscribed endpoint (``webhook_id`` fixed here, so every
retry carries the same id) and the rep's notification mail. Rejected, lost, "no time",
"buying center decides" and "budget frozen" leads return to a recycle journey after the
agreed cool-down (the "blue lines"); won leads enter after-sales.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from engine.clock import Clock
from engine.config.compiler import CompiledConfig
from engine.config.sla import FastLaneSignal, MqlRule
from engine.errors import RipenError
from engine.events import RecordedEvent
from engine.fit import fit_grade
from engine.mail.context import NOTICE, notice_context
from engine.mail.message import new_message_id
from engine.mail.render import Renderer
from engine.routing import Balance, LeadFacts, assign, period_start
from engine.scoring import Score, Scorer, fit_at_least
from engine.stages import STAGE_NAMES, JourneyStage
from engine.store.tables import (
    Account,
    Enrollment,
    Event,
    Handover,
    Lead,
    MailOutbox,
    ScoreEntry,
    WebhookDelivery,
)
from engine.store.uow import Contact, EventRow, UnitOfWork, UowFactory
from engine.tokens import Purpose, Tokens

log = logging.getLogger(__name__)

#: Sales stages after acceptance, in order (seed 002 §5.6); ABS is won.
SALES_STAGES = ("SFC", "BAN", "BCI", "LPN", "ANG", "ABS")
LOST_OUTCOMES = ("lost", "no_time", "buying_center", "budget_frozen")
FEEDBACK_LINKS_VALID = timedelta(days=30)
ORDER = list(JourneyStage)


class HandoverError(RipenError):
    """A sales answer that cannot be applied (unknown reason, already answered …)."""


@dataclass(frozen=True)
class RuleCheck:
    """One MQL rule and which of its conditions hold (for ``ripen explain``)."""

    rule: int
    conditions: tuple[tuple[str, bool], ...]

    @property
    def holds(self) -> bool:
        return all(ok for _, ok in self.conditions)


@dataclass(frozen=True)
class Explanation:
    lead: Lead
    score: Score
    checks: tuple[RuleCheck, ...]
    handovers: tuple[Handover, ...]

    @property
    def is_mql(self) -> bool:
        return any(check.holds for check in self.checks)


@dataclass(frozen=True)
class Decision:
    """A lead goes to sales now: the score it was decided on, and why."""

    lead: Lead
    score: Score
    reason: str  # fast_lane | threshold
    detail: str


@dataclass(frozen=True)
class HandoverFacts:
    """What handover payloads need about their leads, read once for a whole batch: the
    ledgers (explanation lines), event history, journeys, and each account's contacts with
    their explicit points, content read and (where not kept running) implicit ledger."""

    entries: Mapping[int, Sequence[ScoreEntry]]
    events: Mapping[int, Sequence[EventRow]]
    enrollments: Mapping[int, Sequence[Enrollment]]
    contacts: Mapping[int, Sequence[Contact]]
    held: Mapping[int, Mapping[str, float]]
    read: Mapping[int, Collection[str]]
    ledgers: Mapping[int, Sequence[tuple[datetime, float]]]

    @classmethod
    def load(cls, uow: UnitOfWork, scorer: Scorer, leads: Sequence[Lead],
             now: datetime) -> HandoverFacts:
        ids = [lead.id for lead in leads if lead.id is not None]
        contacts = uow.contacts_of_accounts(lead.account_id for lead in leads
                                            if lead.account_id is not None)
        people = [o for found in contacts.values() for o in found]
        contact_ids = [o.id for o in people]
        return cls(entries=uow.score_entries_of(ids), events=uow.history_of(ids),
                   enrollments=uow.enrollments_of_leads(ids), contacts=contacts,
                   held=uow.explicit_held(contact_ids), read=uow.content_read_by(contact_ids),
                   ledgers=uow.implicit_entries_of(
                       o.id for o in people if scorer.implicit_now(o, now) is None))


def _plain_notice(context: Mapping[str, Any]) -> str:
    """The rep's notice without its template (which failed for this lead): what the rep
    needs to act — who, why, until when, and the links."""
    lead = context["lead"]
    who = ", ".join(filter(None, (lead["name"], lead["job_title"], lead["company"])))
    phone = f"\n  Telefon: {lead['phone']} (Einwilligung liegt vor)" if lead["phone"] else ""
    return (f"Guten Tag {context['rep']['name']},\n\n"
            f"ein Lead ist reif für den Vertrieb ({context['reason']}, Bewertung "
            f"{context['grade']}):\n\n  {who}\n  E-Mail: {lead['email']}{phone}\n"
            f"  Phase: {lead['stage']}\n  Warum jetzt: {context['detail']}\n\n"
            f"Bitte nehmen Sie den Lead bis {context['accept_by']:%d.%m.%Y %H:%M} UTC an oder "
            f"lehnen Sie ihn mit Begründung ab:\n\n{context['answer_url']}\n\n"
            f"Was der Lead bisher gelesen und getan hat (nur lesend):\n\n"
            f"{context['timeline_url']}\n\n"
            "(Die Vorlage dieser Nachricht ließ sich für diesen Lead nicht füllen; dies ist "
            f"die schlichte Fassung.)\n\n--\n{context['imprint']}\n")


class HandoverService:
    def __init__(self, *, uow: UowFactory, config: CompiledConfig, tokens: Tokens,
                 renderer: Renderer, clock: Clock, base_url: str) -> None:
        self.uow = uow
        self.config = config
        self.sla = config.sla
        self.tokens = tokens
        self.renderer = renderer
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.scorer = Scorer(config)

    # --- qualification ------------------------------------------------------------------

    def checks(self, uow: UnitOfWork, lead: Lead, score: Score, *,
               stop_early: bool = False,
               read: Collection[str] | None = None) -> tuple[RuleCheck, ...]:
        """Each MQL rule's conditions; ``stop_early`` leaves out those after the first that
        fails (qualifying needs only the verdict; ``explain`` shows them all). ``read``:
        the content the lead clicked or downloaded since its recycle, as already read."""
        found = []
        for number, rule in enumerate(self.sla.mql.rules, start=1):
            found.append(RuleCheck(number, tuple(self._conditions(uow, lead, score, rule,
                                                                  stop_early, read))))
        return tuple(found)

    def _conditions(self, uow: UnitOfWork, lead: Lead, score: Score, rule: MqlRule,
                    stop_early: bool = False,
                    read: Collection[str] | None = None) -> list[tuple[str, bool]]:
        conditions: list[tuple[str, bool]] = []

        def failed() -> bool:
            return stop_early and not all(ok for _, ok in conditions)

        if rule.fit_at_least is not None:
            conditions.append((f"fit {score.fit} ≥ {rule.fit_at_least}",
                               fit_at_least(score.fit, rule.fit_at_least)))
        if rule.engagement_at_least is not None:
            conditions.append((f"engagement {score.implicit:.1f} ≥ {rule.engagement_at_least}",
                               score.implicit >= rule.engagement_at_least))
        if failed():
            return conditions
        if rule.stage is not None:
            current = lead.funnel_stage
            ok = current in JourneyStage.__members__ and \
                ORDER.index(JourneyStage(current)) >= ORDER.index(JourneyStage(rule.stage))
            conditions.append((f"stage {current} ≥ {rule.stage.value}", ok))
        if failed():
            return conditions
        if rule.downloaded_type:
            wanted = {str(t) for t in rule.downloaded_type}
            if read is None:
                found = uow.content_read_by([lead.id or 0], since_recycle=True)
                read = found.get(lead.id or 0, set())
            items = (self.config.content.get(content_id) for content_id in read)
            got = sorted({item.type for item in items if item is not None
                          and item.type in wanted})
            conditions.append((f"downloaded {'/'.join(sorted(wanted))}"
                               + (f" ({', '.join(got)})" if got else ""), bool(got)))
        return conditions

    def explain(self, email: str) -> Explanation | None:
        now = self.clock()
        with self.uow() as uow:
            lead = uow.lead_by_email(email)
            if lead is None or lead.id is None:
                return None
            score = self.scorer.score(uow, lead, now)
            fresh = self.scorer.score(uow, lead, now, since=lead.recycled_at)
            return Explanation(lead, score, self.checks(uow, lead, fresh),
                               tuple(uow.handovers_of(lead.id)))

    def fast_lane_reason(self, uow: UnitOfWork, lead: Lead, event: RecordedEvent,
                         score: Score) -> str | None:
        """Why this event hands the lead over at once, whatever its score (or None)."""
        rules = self.sla.fast_lane
        if event.is_scanner:
            return None
        if event.type == "contact_request" and rules.contact_request:
            return "contact request"
        item = self.config.content.get(event.content_id or "")
        if rules.fast_lane_content and item is not None and item.fast_lane and \
                event.type in ("click", "download"):
            return f"fast-lane content {item.id}"
        for signal in rules.signals:
            if _signal_matches(signal, event, score):
                return f"signal {signal.event}" + (f" {signal.page}" if signal.page else "")
        return None

    def evaluate(self, uow: UnitOfWork, lead: Lead, now: datetime,
                 events: Sequence[RecordedEvent] = ()) -> Handover | None:
        """Score the lead; hand it over when the fast lane (for one of ``events``) or the
        MQL rule says so."""
        decision = self.decide(uow, lead, now, events)
        if decision is None:
            return None
        return self.hand_over(uow, lead, decision.score, decision.reason, decision.detail, now)

    def decide(self, uow: UnitOfWork, lead: Lead, now: datetime,
               events: Sequence[RecordedEvent] = (), *, score: Score | None = None,
               read: Collection[str] | None = None) -> Decision | None:
        """Whether the lead goes to sales now, and why. ``score`` and ``read`` (its content
        read since the recycle): as already computed for a batch."""
        if lead.qualify_at is not None:
            lead.qualify_at = None
            uow.add(lead)
        if lead.status != "confirmed" or lead.sales_stage is not None or lead.id is None:
            return None
        if score is None:
            score = self.scorer.current(uow, lead, now)
            uow.add(lead)  # its running implicit points may have been brought up to date
        for event in events:
            reason = self.fast_lane_reason(uow, lead, event, score)
            if reason is not None:
                return Decision(lead, score, "fast_lane", reason)
        met = [c for c in self.checks(uow, lead, score, stop_early=True, read=read)
               if c.holds]
        if met:
            detail = "MQL rule " + str(met[0].rule) + ": " + \
                ", ".join(text for text, _ in met[0].conditions)
            return Decision(lead, score, "threshold", detail)
        return None

    def on_events(self, uow: UnitOfWork, leads: Mapping[int, Lead],
                  events: Mapping[int, Sequence[RecordedEvent]],
                  now: datetime) -> dict[int, Handover]:
        """In the events' transaction: their implicit points (running score and ledger),
        then the fast lane and the MQL rule once per lead. Explicit points, accounts and
        the routing balance are read once for the whole batch."""
        self.scorer.record_implicit(uow, leads, self.scorer.earned(
            e for batch in events.values() for e in batch), now)
        for lead_id in events:
            uow.add(leads[lead_id])
        candidates = [leads[i] for i in events if leads[i].sales_stage is None
                      and leads[i].status == "confirmed"]
        ids = [lead.id for lead in candidates if lead.id is not None]
        held = uow.explicit_held(ids)
        read = uow.content_read_by(ids, since_recycle=True) if any(
            rule.downloaded_type for rule in self.sla.mql.rules) else {}
        accounts = uow.accounts_by_id(lead.account_id for lead in candidates
                                      if lead.account_id is not None)
        decisions = []
        ledger: list[dict[str, Any]] = []
        for lead in candidates:
            assert lead.id is not None
            score = self.scorer.current(
                uow, lead, now, held=held.get(lead.id, {}),
                account=accounts.get(lead.account_id) if lead.account_id else None,
                ledger=ledger)
            decision = self.decide(uow, lead, now, events[lead.id], score=score,
                                   read=read.get(lead.id, set()))
            if decision is not None:
                decisions.append(decision)
        uow.insert_rows(ScoreEntry, ledger)  # before the handovers explain from the ledger
        return {handover.lead_id: handover for handover in self.hand_over_many(uow, decisions,
                                                                                now)}

    def qualify_due(self, *, limit: int = 1000) -> list[int]:
        """The tick's part: leads marked for evaluation, in batches; new handover ids."""
        created = []
        while True:
            now = self.clock()
            with self.uow() as uow:
                leads = uow.leads_to_qualify(now, limit)
                for lead in leads:
                    handover = self.evaluate(uow, lead, now)
                    if handover is not None:
                        uow.flush()
                        created.append(handover.id or 0)
                uow.commit()
            if len(leads) < limit:
                return created

    # --- handing over -------------------------------------------------------------------

    def hand_over(self, uow: UnitOfWork, lead: Lead, score: Score, reason: str, detail: str,
                  now: datetime) -> Handover:
        [handover] = self.hand_over_many(uow, [Decision(lead, score, reason, detail)], now)
        return handover

    def hand_over_many(self, uow: UnitOfWork, decisions: Sequence[Decision],
                       now: datetime) -> list[Handover]:
        """Hand the decided leads over, in order: routing (one balance for all, each
        handover added to it), the handover row, the lead with sales, its journeys paused,
        the webhook and the rep's notice. What the payloads need is read once for all."""
        if not decisions:
            return []
        facts = HandoverFacts.load(uow, self.scorer, [d.lead for d in decisions], now)
        balance = self.balance(uow, now)
        made = []
        for decision in decisions:
            lead, score = decision.lead, decision.score
            assert lead.id is not None
            account = uow.session.get(Account, lead.account_id) if lead.account_id else None
            facts_of_lead = LeadFacts(region=account.region if account else None,
                                      industry=account.industry if account else None,
                                      company_size=account.company_size if account else None,
                                      persona=lead.persona_id, fit=score.fit)
            assigned = assign(facts_of_lead, self.sla.routing, self.sla.reps, balance)
            if assigned is not None:
                balance.add(assigned.rep.id, score.grade[0])
            handover = Handover(
                public_id=secrets.token_urlsafe(16), lead_id=lead.id, reason=decision.reason,
                rep_id=assigned.rep.id if assigned else None,
                channel=assigned.rep.channel if assigned else None,
                routing_rule=assigned.rule if assigned else None, grade=score.grade,
                created_at=now, sla_due_at=now + self.sla.sales_response.accept_within)
            uow.add(handover)
            lead.sales_stage = "MQL"
            lead.mql_at = now
            lead.updated_at = now
            uow.add(lead)
            for enrollment in facts.enrollments.get(lead.id, []):
                if enrollment.status == "active":  # paused, not ended: sales may reject
                    enrollment.status, enrollment.due_at = "paused", None
                    uow.add(enrollment)
            made.append((decision, handover, account, assigned is not None))
        uow.flush()  # the handovers' ids, for their webhooks
        for decision, handover, account, notify in made:
            lead = decision.lead
            # the explanation lines come from the ledger (the batch decided on running points)
            explained = decision.score if decision.score.lines else self.scorer.score(
                uow, lead, now, since=lead.recycled_at,
                entries=facts.entries.get(lead.id or 0, []))
            payload = self.payload(uow, handover, lead, account, explained, decision.detail,
                                   now, facts)
            self._webhooks(uow, handover, "handover.created", payload, now)
            if notify:
                self._notify_rep(uow, handover, lead, account, decision.score,
                                 decision.detail, now)
        return [handover for _, handover, _, _ in made]

    def balance(self, uow: UnitOfWork, now: datetime) -> Balance:
        balance = Balance()
        for rep_id, grade, count in uow.handover_grades_since(
                period_start(now, self.sla.routing.period)):
            if rep_id is not None:
                balance.add(rep_id, (grade or "D")[0], count)
        return balance

    def payload(self, uow: UnitOfWork, handover: Handover, lead: Lead, account: Account | None,
                score: Score, detail: str, now: datetime,
                facts: HandoverFacts | None = None) -> dict[str, Any]:
        """What the rep needs to prepare (schema: docs/handover.schema.json). ``facts``: the
        lead's history as already read (for a batch of handovers)."""
        assert lead.id is not None
        if facts is None:
            facts = HandoverFacts.load(uow, self.scorer, [lead], now)
        rep = next((r for r in self.sla.reps if r.id == handover.rep_id), None)
        consumed = [{"content": e.content_id, "title": item.title, "stage": e.stage,
                     "type": e.type, "at": e.occurred_at.isoformat()}
                    for e in facts.events.get(lead.id, [])
                    if e.type in ("click", "download", "open")
                    and (item := self.config.content.get(e.content_id or "")) is not None]
        history = [{"journey": e.journey_id, "version": e.journey_version, "stage": e.stage,
                    "status": e.status, "started_at": e.started_at.isoformat(),
                    "ended_at": e.ended_at.isoformat() if e.ended_at else None,
                    "exit_reason": e.exit_reason}
                   for e in facts.enrollments.get(lead.id, [])]
        token = self.tokens.dumps(Purpose.SALES_FEEDBACK, handover.public_id, now=now)
        return {
            "type": "handover.created",
            "timestamp": now.isoformat(),
            "data": {
                "handover_id": handover.public_id,
                "reason": handover.reason,
                "reason_detail": detail,
                "rep": {"id": rep.id, "name": rep.name, "email": str(rep.email),
                        "channel": rep.channel} if rep else None,
                "sla": {"accept_by": handover.sla_due_at.isoformat()
                        if handover.sla_due_at else None},
                "lead": {
                    "id": lead.public_id, "email": lead.email, "first_name": lead.first_name,
                    "last_name": lead.last_name, "job_title": lead.job_title,
                    "phone": lead.phone if lead.phone_consent else None,
                    "language": lead.language, "persona": lead.persona_id,
                    "funnel_stage": lead.funnel_stage, "source": lead.source,
                    "campaign": lead.campaign,
                },
                "account": {"name": account.name, "domain": account.domain,
                            "industry": account.industry,
                            "company_size": account.company_size,
                            "region": account.region} if account else None,
                "consent": {"email": True, "phone": lead.phone_consent,
                            "tracking": lead.tracking_consent,
                            "text_version": lead.consent_version},
                "score": {"grade": score.grade, "fit": score.fit,
                          "engagement": score.engagement,
                          "explicit": round(score.explicit, 1),
                          "implicit": round(score.implicit, 1),
                          "explanation": _explanation_lines(score)},
                "content_consumed": consumed,
                "journey_history": history,
                "buying_center": self.buying_center(lead, now, facts),
                "links": {"accept": f"{self.base_url}/h/{token}",
                          "reject": f"{self.base_url}/h/{token}",
                          "api_accept": f"{self.base_url}/api/handovers/"
                                        f"{handover.public_id}/accept",
                          "api_reject": f"{self.base_url}/api/handovers/"
                                        f"{handover.public_id}/reject"},
            },
        }

    def buying_center(self, lead: Lead, now: datetime,
                      facts: HandoverFacts) -> dict[str, Any] | None:
        """The other engaged contacts of the account, what they read, and the account score
        (the contacts' current implicit points)."""
        if lead.account_id is None:
            return None
        contacts = []
        total = 0.0
        for other in facts.contacts.get(lead.account_id, []):
            implicit = self.scorer.implicit_now(other, now)
            if implicit is None:
                implicit = self.scorer.decayed(facts.ledgers.get(other.id, []),
                                               other.recycled_at, now)
            explicit = sum(facts.held.get(other.id, {}).values())
            total += implicit
            if other.id == lead.id:
                continue
            grade = fit_grade(explicit, self.config.scoring) + \
                self.scorer.engagement_digit(implicit)
            contacts.append({"name": " ".join(filter(None, (other.first_name,
                                                             other.last_name))) or None,
                             "job_title": other.job_title, "persona": other.persona_id,
                             "grade": grade, "read": sorted(facts.read.get(other.id, ()))})
        return {"account_score": round(total, 1), "contacts": contacts}

    def _webhooks(self, uow: UnitOfWork, handover: Handover, event_type: str,
                  payload: dict[str, Any], now: datetime) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        assert handover.id is not None
        for endpoint in self.sla.webhooks:
            if event_type in endpoint.events:
                uow.insert_later(WebhookDelivery, {
                    "webhook_id": f"msg_{secrets.token_urlsafe(18)}",
                    "endpoint_id": endpoint.id, "event_type": event_type,
                    "handover_id": handover.id, "payload": body, "next_attempt_at": now,
                    "created_at": now})

    def _notify_rep(self, uow: UnitOfWork, handover: Handover, lead: Lead,
                    account: Account | None, score: Score, detail: str, now: datetime) -> None:
        rep = next(r for r in self.sla.reps if r.id == handover.rep_id)
        assert lead.id is not None
        assert handover.sla_due_at is not None  # set when the handover was made
        token = self.tokens.dumps(Purpose.SALES_FEEDBACK, handover.public_id, now=now)
        name = " ".join(filter(None, (lead.first_name, lead.last_name))) or lead.email or ""
        subject = f"Neuer Lead für Sie: {name}" + (f" ({account.name})" if account else "")
        context = notice_context(
            subject=subject, rep_name=rep.name,
            lead={"name": name, "email": lead.email or "", "job_title": lead.job_title,
                  "company": account.name if account else None,
                  "phone": lead.phone if lead.phone_consent else None,
                  "stage": STAGE_NAMES.get(lead.funnel_stage, lead.funnel_stage)},
            reason="Sales Fast Lane" if handover.reason == "fast_lane" else "MQL",
            detail=detail, grade=score.grade, answer_url=f"{self.base_url}/h/{token}",
            timeline_url=f"{self.base_url}/l/"
                         + self.tokens.dumps(Purpose.LEAD_VIEW, lead.public_id, now=now),
            accept_by=handover.sla_due_at, imprint=self.config.mail.imprint)
        try:
            body_html, text = self.renderer.render(NOTICE, context)
        except Exception as exc:  # the template failed on this lead's values: the rep hears
            # of the lead all the same (the SLA runs), and the other handovers go on
            problem = f"{type(exc).__name__}: {exc}"[:500]
            log.error("the handover notice template failed for handover %s (%s); the rep "
                      "gets ripen's plain notice instead", handover.public_id, problem)
            uow.add(Event(lead_id=lead.id, type="notice_template_failed", source="ripen",
                          data={"handover": handover.public_id, "problem": problem},
                          occurred_at=now, recorded_at=now))
            text = _plain_notice(context)
            body_html = "<pre style=\"white-space: pre-wrap\">" + html.escape(text) + "</pre>"
        uow.insert_later(MailOutbox, {
            # tied to the lead (it names the person): erased and exported with it
            "idempotency_key": f"handover:{handover.public_id}:rep", "lead_id": lead.id,
            "kind": "transactional", "category": "notification", "to_address": str(rep.email),
            "subject": subject,
            "message_id": new_message_id(self.config.mail.message_id_domain),
            "body_html": body_html, "body_text": text, "headers": {}, "created_at": now})

    # --- sales feedback -----------------------------------------------------------------

    def answer(self, handover_id: str, decision: Literal["accept", "reject"], *,
               reason: str | None = None, note: str | None = None) -> Handover:
        """Sales accepts (→ SAL) or rejects with a reason code (→ recycle after cool-down)."""
        now = self.clock()
        with self.uow() as uow:
            handover = uow.handover_by_public_id(handover_id)
            if handover is None:
                raise HandoverError("no such handover")
            if handover.status not in ("open",):
                if (handover.status, decision) in (("accepted", "accept"),
                                                   ("rejected", "reject")):
                    return handover  # the same answer twice changes nothing
                raise HandoverError(f"this handover was already {handover.status}")
            lead = uow.session.get(Lead, handover.lead_id)
            assert lead is not None
            assert lead.id is not None
            handover.answered_at = now
            if decision == "accept":
                handover.status = "accepted"
                lead.sales_stage = "SAL"
                uow.end_enrollments(lead.id, "accepted_by_sales", now)
            else:
                codes = {r.code: r for r in self.sla.rejection_reasons}
                if reason not in codes:
                    raise HandoverError("a rejection needs a reason: " + ", ".join(codes))
                handover.status = "rejected"
                handover.rejection_code = reason
                rule = codes[reason]
                self._recycle(uow, lead, rule.recycle_journey, rule.cool_down, now,
                              f"rejected:{reason}")
            lead.updated_at = now
            uow.add(handover, lead)
            uow.add(Event(lead_id=lead.id, type=f"handover_{handover.status}", source="sales",
                          data={"handover": handover.public_id, "reason": reason,
                                "note": _note(note) or ""}, occurred_at=now,
                          recorded_at=now))
            self._webhooks(uow, handover, "handover.answered", {
                "type": "handover.answered", "timestamp": now.isoformat(),
                "data": {"handover_id": handover.public_id, "status": handover.status,
                         "reason": reason, "note": _note(note)}}, now)
            uow.commit()
            return handover

    def for_answer(self, handover_id: str) -> dict[str, Any] | None:
        """What the rep's answer page shows about the handover and its lead (None: no such
        handover, or its lead was erased)."""
        with self.uow() as uow:
            handover = uow.handover_by_public_id(handover_id)
            lead = uow.session.get(Lead, handover.lead_id) if handover else None
            if handover is None or lead is None or lead.status == "erased":
                return None
            account = uow.session.get(Account, lead.account_id) if lead.account_id else None
            return {"name": " ".join(filter(None, (lead.first_name, lead.last_name)))
                            or lead.email,
                    "job_title": lead.job_title, "company": account.name if account else None,
                    "email": lead.email, "stage": STAGE_NAMES.get(lead.funnel_stage,
                                                                  lead.funnel_stage),
                    "grade": handover.grade, "status": handover.status,
                    "reason": "Sales Fast Lane" if handover.reason == "fast_lane" else "MQL",
                    "lead_id": lead.public_id}

    def progress(self, lead_id: str, stage: str, *, note: str | None = None) -> Lead:
        """Sales moves an accepted lead on (SFC … ABS) or closes it lost/no time/…"""
        now = self.clock()
        with self.uow() as uow:
            lead = uow.lead_by_public_id(lead_id)
            if lead is None or lead.id is None:
                raise HandoverError("no such lead")
            if lead.sales_stage not in ("SAL", *SALES_STAGES):
                raise HandoverError("only a lead sales has accepted can move through the "
                                    "sales stages; accept its handover first")
            handover = next((h for h in sorted(uow.handovers_of(lead.id),
                                               key=lambda h: h.created_at, reverse=True)
                             if h.status == "accepted"), None)
            if stage in SALES_STAGES:
                lead.sales_stage = stage
                if stage == "ABS":
                    self._close(uow, lead, handover, "won", now)
            elif stage in LOST_OUTCOMES:
                self._close(uow, lead, handover, stage, now)
            else:
                raise HandoverError(f'unknown stage "{stage[:20]}"; use one of '
                                    + ", ".join((*SALES_STAGES, *LOST_OUTCOMES)))
            lead.updated_at = now
            uow.add(lead)
            uow.add(Event(lead_id=lead.id, type="sales_stage", source="sales",
                          data={"stage": stage, "note": (note or "")[:500]},
                          occurred_at=now, recorded_at=now))
            uow.commit()
            return lead

    def _close(self, uow: UnitOfWork, lead: Lead, handover: Handover | None, outcome: str,
               now: datetime) -> None:
        assert lead.id is not None
        if handover is not None:
            handover.status = "closed"
            handover.outcome = outcome
            uow.add(handover)
            self._webhooks(uow, handover, "handover.closed", {
                "type": "handover.closed", "timestamp": now.isoformat(),
                "data": {"handover_id": handover.public_id, "status": "closed",
                         "outcome": outcome, "lead": lead.public_id}}, now)
        rule = self.sla.outcomes.get(outcome)  # type: ignore[call-overload]
        if outcome == "won":
            lead.sales_stage = None
            lead.funnel_stage = "ABS"
            if rule is not None:
                self._recycle(uow, lead, rule.journey, rule.cool_down or timedelta(0), now,
                              "won")
            return
        if rule is not None:
            self._recycle(uow, lead, rule.journey, rule.cool_down or timedelta(0), now,
                          f"closed:{outcome}")
        else:
            lead.sales_stage = None

    def _recycle(self, uow: UnitOfWork, lead: Lead, journey_id: str, cool_down: timedelta,
                 now: datetime, why: str) -> Enrollment | None:
        """Back to nurturing: the lead leaves sales and waits out the cool-down first."""
        assert lead.id is not None
        uow.end_enrollments(lead.id, why, now)
        lead.sales_stage = None
        lead.qualify_at = None
        lead.recycled_at = now
        journey = self.config.journeys.get(journey_id)
        if journey is None:
            return None
        uow.flush()
        start = next(iter(journey.entry))
        enrollment = Enrollment(lead_id=lead.id, journey_id=journey.id,
                                journey_version=journey.version, stage=start.value,
                                step_id=journey.entry[start], stage_entered_at=now,
                                step_entered_at=now, started_at=now, due_at=now + cool_down,
                                last_engaged_at=now + cool_down)
        uow.add(enrollment)
        if start in (JourneyStage.AFS, JourneyStage.WIK, JourneyStage.CUS):
            lead.funnel_stage = start.value
        return enrollment

    # --- SLA timers ---------------------------------------------------------------------

    def escalate_overdue(self, *, limit: int = 500) -> list[str]:
        """Handovers sales did not answer in time: a breach, a webhook and a mail."""
        now = self.clock()
        escalated = []
        with self.uow() as uow:
            for handover in uow.overdue_handovers(now, limit):
                handover.breached = True
                handover.escalated_at = now
                uow.add(handover)
                lead = uow.session.get(Lead, handover.lead_id)
                payload = {"type": "handover.escalated", "timestamp": now.isoformat(),
                           "data": {"handover_id": handover.public_id,
                                    "rep": handover.rep_id,
                                    "due_at": handover.sla_due_at.isoformat()
                                    if handover.sla_due_at else None,
                                    "lead": lead.public_id if lead else None}}
                self._webhooks(uow, handover, "handover.escalated", payload, now)
                token = self.tokens.dumps(Purpose.SALES_FEEDBACK, handover.public_id, now=now)
                subject = f"SLA verletzt: Lead-Übergabe an {handover.rep_id or 'niemand'} " \
                          "unbeantwortet"
                text = (f"Die Übergabe {handover.public_id} vom "
                        f"{handover.created_at:%d.%m.%Y %H:%M} UTC wurde nicht bis "
                        f"{handover.sla_due_at:%d.%m.%Y %H:%M} UTC beantwortet.\n\n"
                        f"Annehmen oder ablehnen: {self.base_url}/h/{token}\n")
                uow.add_mail(MailOutbox(
                    idempotency_key=f"handover:{handover.public_id}:escalation",
                    lead_id=handover.lead_id, kind="transactional", category="notification",
                    to_address=str(self.sla.sales_response.escalate_to), subject=subject,
                    message_id=new_message_id(self.config.mail.message_id_domain),
                    headers={}, created_at=now),
                    body_html="<p>" + html.escape(text).replace("\n", "<br>") + "</p>",
                    body_text=text)
                escalated.append(handover.public_id)
            uow.commit()
        return escalated


def _signal_matches(signal: FastLaneSignal, event: RecordedEvent, score: Score) -> bool:
    if event.type != signal.event:
        return False
    if signal.page is not None and (event.data or {}).get("page") != signal.page:
        return False
    if signal.content is not None and event.content_id != signal.content:
        return False
    return signal.fit_at_least is None or fit_at_least(score.fit, signal.fit_at_least)


def _explanation_lines(score: Score) -> list[dict[str, Any]]:
    totals: dict[str, float] = {}
    for line in score.lines:
        totals[line.rule_id] = totals.get(line.rule_id, 0.0) + line.points
    return [{"rule": rule, "points": round(points, 1)}
            for rule, points in sorted(totals.items(), key=lambda kv: -abs(kv[1]))
            if abs(points) >= 0.05]


def _note(note: str | None) -> str | None:
    """A rep's note as the CRM gets it: one paragraph of at most 500 characters, without
    control characters (line breaks become spaces)."""
    if not note:
        return None
    flat = " ".join("".join(c if c.isprintable() else " " for c in note).split())
    return flat[:500] or None
