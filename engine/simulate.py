"""Try journeys before they go live (seed 002 §5.4): synthetic leads through the real engine.

A cohort of synthetic leads — a persona mix and behaviour profiles (eager, slow,
never-engages, fast-lane) — signs up, confirms the double opt-in mail, and reacts to the
journey mails it receives, on a virtual clock. Everything runs through the same code as
production: sign-up and confirmation (``ConsentService``), the journey runtime's tick
(steps, policy, slowest case), clicks through the tracked links, downloads and fast-lane
requests through event ingestion, scoring and the MQL rule, handovers. Mail goes through the
outbox into a capture transport; nothing leaves the process (no webhook is sent).

Deterministic for a seed: every decision draws from a random generator seeded by (seed,
lead, the lead's n-th mail), so neither the database nor the order of processing changes
the outcome.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from functools import partial
from typing import Any

from engine import abtest
from engine.abtest import AbTestResult
from engine.accounts import AccountFacts
from engine.adapters.mailers import CaptureMailer
from engine.bootstrap import Ripen
from engine.clock import ManualClock
from engine.config.compiler import CompiledJourney
from engine.config.journey import BranchStep
from engine.consent import SignUp
from engine.errors import RipenError
from engine.outbox import deliver, send_claimed
from engine.report import FunnelReport, funnel_report, p90
from engine.store import reporting
from engine.store.tables import Lead
from engine.tokens import Purpose, TokenExpired, TokenInvalid
from engine.tracking import contact_request, follow

#: A monday morning: the default start, so weekends and quiet hours fall the same each run.
DEFAULT_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SIM_DOMAIN = "sim.ripen-nurture.de"
AGENT = "Mozilla/5.0 (ripen simulate)"


class SimulationError(RipenError):
    pass


@dataclass(frozen=True)
class Behaviour:
    """How a synthetic lead reacts to each journey mail."""

    click: float                       # chance to click the mail's content
    click_after: tuple[float, float]   # hours, uniform
    download: float                    # chance to download after a click
    unsubscribe: float = 0.0           # chance to unsubscribe instead of reading
    contact_on_mail: int | None = None  # asks for the fast lane on its n-th journey mail


BEHAVIOURS: dict[str, Behaviour] = {
    "eager": Behaviour(click=0.85, click_after=(1, 12), download=0.7),
    "slow": Behaviour(click=0.4, click_after=(24, 120), download=0.35, unsubscribe=0.01),
    "never": Behaviour(click=0.0, click_after=(0, 0), download=0.0, unsubscribe=0.03),
    "fast_lane": Behaviour(click=0.6, click_after=(2, 24), download=0.3, contact_on_mail=2),
}
DEFAULT_MIX = {"eager": 0.2, "slow": 0.4, "never": 0.3, "fast_lane": 0.1}


@dataclass(frozen=True)
class Spec:
    leads: int = 200
    days: int = 90
    seed: int = 1
    personas: Mapping[str, float] | None = None  # default: every persona with a journey
    behaviours: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    arrival_days: int = 14     # sign-ups spread over the first days
    fit: float = 0.7           # share of leads whose company fits the persona
    tick: timedelta = timedelta(hours=1)
    start: datetime = DEFAULT_START
    #: A/B tests: a mail whose subject contains the text is clicked this many times as
    #: often (a subject that appeals more, 2.0; less, 0.5); the chance stays at most 1.
    appeal: Mapping[str, float] = field(default_factory=dict)

    def checked(self, personas: list[str]) -> Spec:
        """The spec with the persona mix filled in; SimulationError for bad values."""
        if not 1 <= self.leads <= 100_000:
            raise SimulationError("leads must be between 1 and 100,000")
        if not 1 <= self.days <= 3650:
            raise SimulationError("days must be between 1 and 3,650")
        if not timedelta(minutes=1) <= self.tick <= timedelta(days=1):
            raise SimulationError("the tick must be between 1 minute and 1 day")
        if not 0.0 <= self.fit <= 1.0:
            raise SimulationError("fit is a share between 0 and 1")
        unknown = [b for b in self.behaviours if b not in BEHAVIOURS]
        if unknown:
            raise SimulationError(f"unknown behaviour {', '.join(unknown)}; use "
                                  + ", ".join(BEHAVIOURS))
        mix = dict(self.personas or {p: 1.0 for p in personas})
        missing = [p for p in mix if p not in personas]
        if missing:
            raise SimulationError(f"persona {', '.join(missing)} has no nurture journey; use "
                                  + ", ".join(personas))
        for name, shares in (("persona", mix), ("behaviour", self.behaviours)):
            if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
                raise SimulationError(f"the {name} mix needs positive shares")
        if any(not text or factor < 0 or factor > 100 for text, factor in self.appeal.items()):
            raise SimulationError("an appeal is SUBJECT TEXT=FACTOR with a factor from 0 to 100")
        return Spec(leads=self.leads, days=self.days, seed=self.seed, personas=mix,
                    behaviours=dict(self.behaviours), arrival_days=max(0, self.arrival_days),
                    fit=self.fit, tick=self.tick, start=self.start.astimezone(UTC),
                    appeal=dict(self.appeal))


@dataclass
class SimLead:
    index: int
    persona: str
    behaviour: str
    email: str
    mails: int = 0


@dataclass
class StepCoverage:
    step: str
    stage: str
    kind: str
    reached: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass
class Result:
    seed: int
    leads: int
    days: int
    start: str
    behaviours: dict[str, float]
    personas: dict[str, dict[str, Any]]
    by_behaviour: dict[str, dict[str, Any]]
    mails: dict[str, int]
    deferred: dict[str, int]
    coverage: dict[str, list[StepCoverage]]
    unreached: list[str]
    not_entered: list[str]
    report: FunnelReport | None = None
    ab_tests: list[AbTestResult] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("report")
        data["ab_tests"] = [test.as_json() for test in self.ab_tests]
        return data


def _pick(rng: random.Random, shares: Mapping[str, float]) -> str:
    names = sorted(shares)
    return rng.choices(names, weights=[shares[n] for n in names])[0]


_URL = re.compile(r"https?://[^\s<>\"')]+")


def _text(message: Message) -> str:
    """The plain-text part (the links are the same in both parts)."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


class Simulation:
    """One run: a fresh, empty database, the configuration as it is, a virtual clock."""

    def __init__(self, ripen: Ripen, clock: ManualClock, spec: Spec,
                 progress: Callable[[int], None] | None = None) -> None:
        self.ripen = ripen
        self.clock = clock
        personas = sorted({j.model.persona for j in ripen.config.journeys.values()
                           if j.model.kind == "nurture" and j.model.persona})
        self.spec = spec.checked(personas)
        self.progress = progress
        self.capture = CaptureMailer()
        # a send step's mails go out right after their batch, as in production — into the
        # capture, like every other mail of the simulation
        ripen.journeys.dispatch = lambda rows, owner: send_claimed(
            ripen.uow, self.capture, ripen.sender, rows, clock=clock, owner=owner,
            lease=ripen.lease)
        self.base = ripen.settings.public_base_url.rstrip("/")
        self.actions: list[tuple[datetime, int, Callable[[], object]]] = []
        self.sequence = 0
        self.leads: dict[str, SimLead] = {}
        self.coverage: dict[str, dict[str, StepCoverage]] = {}
        for journey in ripen.config.journeys.values():
            self.coverage[journey.id] = {
                step_id: StepCoverage(step_id, journey.stage_of[step_id].value,
                                      next(k for k in ("send", "wait", "branch", "advance",
                                                       "goal", "exit")
                                           if k in type(journey.steps[step_id]).model_fields))
                for step_id in journey.order}
        self.mail_counts: Counter[str] = Counter()
        self.slowest_checked: date | None = None

    # --- the cohort ---------------------------------------------------------------------

    def _cohort(self) -> None:
        spec = self.spec
        assert spec.personas is not None
        for index in range(spec.leads):
            rng = random.Random(f"{spec.seed}:lead:{index}")
            persona = _pick(rng, spec.personas)
            behaviour = _pick(rng, spec.behaviours)
            person = SimLead(index, persona, behaviour, f"sim-{index:05d}@{SIM_DOMAIN}")
            self.leads[person.email] = person
            arrival = spec.start + timedelta(seconds=rng.uniform(0, spec.arrival_days * 86400))
            fits = rng.random() < spec.fit
            self._at(arrival, partial(self._sign_up, person, rng, fits))

    def _sign_up(self, person: SimLead, rng: random.Random, fits: bool) -> None:
        config = self.ripen.config
        persona = config.personas[person.persona]
        fit = persona.fit
        title = rng.choice(persona.positions) if persona.positions else None
        industry = rng.choice(fit.industries) if fits and fit.industries else "retail"
        low = fit.company_size.min if fit.company_size else 10
        high = (fit.company_size.max if fit.company_size else None) or max(5000, 4 * low)
        size = rng.randint(low, high) if fits else max(1, low // 5)
        region = rng.choice(fit.regions) if fit.regions else "DE"
        version = config.consent.current
        # the lead's public id from the seed (it picks the A/B variant), not from chance
        digest = hashlib.sha256(f"{self.spec.seed}:public-id:{person.index}".encode()).digest()
        self.ripen.consent.new_public_id = lambda: base64.urlsafe_b64encode(
            digest[:16]).decode().rstrip("=")
        self.ripen.consent.sign_up(SignUp(
            email=person.email, source=rng.choice(("website", "event", "trade_fair")),
            consent_version=version, first_name="Sim", last_name=f"Lead {person.index}",
            company=f"Simulated {person.index:05d} GmbH", job_title=title,
            persona=person.persona, form="simulation", campaign="simulation",
            account=AccountFacts.checked(industry=industry, company_size=str(size),
                                         region=region),
            user_agent=AGENT))

    # --- time ---------------------------------------------------------------------------

    def _at(self, when: datetime, action: Callable[[], object]) -> None:
        self.sequence += 1
        self.actions.append((when, self.sequence, action))

    def run(self) -> Result:
        spec = self.spec
        self.clock.now = spec.start
        end = spec.start + timedelta(days=spec.days)
        self._cohort()
        day = 0
        while self.clock.now < end:
            self._act()
            self._tick()
            self._mail()
            self._act()  # what the mail triggered at once (nothing, unless delays are 0)
            now = self.clock.now
            with self.ripen.uow() as uow:
                due = uow.next_due_at()
            upcoming = [when for when, _, _ in self.actions]
            candidates = [now + timedelta(days=1)] + ([min(upcoming)] if upcoming else []) + \
                ([due] if due is not None else [])
            self.clock.now = min(end, max(min(candidates), now + spec.tick))
            elapsed = (self.clock.now - spec.start).days
            if self.progress is not None and elapsed > day:
                self.progress(elapsed - day)
                day = elapsed
        return self._result(end)

    def _act(self) -> None:
        now = self.clock.now
        due = sorted((a for a in self.actions if a[0] <= now), key=lambda a: (a[0], a[1]))
        self.actions = [a for a in self.actions if a[0] > now]
        for _, _, action in due:
            action()

    def _tick(self) -> None:
        """What the scheduler's tick does, without Prefect (the same engine calls)."""
        today = self.clock.now.date()
        daily = today != self.slowest_checked  # the slowest case counts in days: once a day
        self.slowest_checked = today
        for report in self.ripen.journeys.tick(slowest_case=daily):
            self._cover(report.journey, report.step, report.counts)
        self.ripen.handovers.qualify_due()
        self.ripen.handovers.escalate_overdue()

    def _cover(self, journey_id: str, step_id: str, counts: Mapping[str, int]) -> None:
        step = self.coverage.get(journey_id, {}).get(step_id)
        if step is None:
            return
        for outcome, number in counts.items():
            step.outcomes[outcome] = step.outcomes.get(outcome, 0) + number
            if outcome not in ("waiting", "deferred"):
                step.reached += number

    # --- mail and behaviour -------------------------------------------------------------

    def _mail(self) -> None:
        ripen = self.ripen
        deliver(ripen.uow, self.capture, ripen.sender, clock=self.clock)
        for recipient, raw in self.capture.take():
            message = message_from_bytes(raw)
            person = self.leads.get(recipient)
            if person is None:
                self.mail_counts["to sales"] += 1
                continue
            links = _URL.findall(_text(message))
            confirm = [u for u in links if u.startswith(f"{self.base}/confirm/")]
            if confirm:
                self.mail_counts["double opt-in"] += 1
                rng = random.Random(f"{self.spec.seed}:confirm:{person.index}")
                token = confirm[0].rsplit("/", 1)[1]
                self._at(self.clock.now + timedelta(minutes=rng.uniform(5, 600)),
                         partial(self._confirm, token))
                continue
            self.mail_counts["journey"] += 1
            person.mails += 1
            subject = str(make_header(decode_header(str(message.get("Subject", "")))))
            appeal = 1.0
            for text, factor in self.spec.appeal.items():
                if text in subject:
                    appeal *= factor
            self._react(person, links, str(message.get("List-Unsubscribe", "")), appeal)

    def _confirm(self, token: str) -> None:
        self.ripen.consent.confirm(token, ip=None, user_agent=AGENT, method="simulation")

    def _react(self, person: SimLead, links: list[str], unsubscribe: str,
               appeal: float = 1.0) -> None:
        behaviour = BEHAVIOURS[person.behaviour]
        rng = random.Random(f"{self.spec.seed}:mail:{person.index}:{person.mails}")
        now = self.clock.now
        clicks = [u.rsplit("/", 1)[1] for u in links if u.startswith(f"{self.base}/c/")]
        fast = [u.rsplit("/", 1)[1] for u in links if u.startswith(f"{self.base}/fast-lane/")]
        if behaviour.contact_on_mail is not None and person.mails == behaviour.contact_on_mail \
                and fast:
            self._at(now + timedelta(hours=rng.uniform(*behaviour.click_after)),
                     partial(self._contact, fast[0]))
            return
        if rng.random() < behaviour.unsubscribe and unsubscribe.startswith(f"<{self.base}/u/"):
            token = unsubscribe.strip("<>").rsplit("/", 1)[1]
            self._at(now + timedelta(hours=rng.uniform(1, 48)),
                     partial(self._unsubscribe, token))
            return
        if not clicks or rng.random() >= min(1.0, behaviour.click * appeal):
            return
        when = now + timedelta(hours=rng.uniform(*behaviour.click_after))
        download = rng.random() < behaviour.download
        self._at(when, partial(self._click, clicks[0], download))

    def _click(self, token: str, download: bool) -> None:
        try:
            click = follow(self.ripen.journeys, self.ripen.tokens, token, user_agent=AGENT,
                           ip=None)
        except (TokenInvalid, TokenExpired):
            return
        if not download or click.is_scanner:
            return
        ripen = self.ripen
        token_id = ripen.tokens.loads(Purpose.CLICK, token, now=self.clock.now)
        with ripen.uow() as uow:
            link = uow.tracked_link(token_id)
        if link is not None:
            self._at(self.clock.now + timedelta(minutes=10), partial(
                ripen.journeys.record_event, lead_id=link.lead_id, type="download",
                content_id=link.content_id, source="website",
                idempotency_key=f"sim-download:{link.token_id}"))

    def _contact(self, token: str) -> None:
        try:
            contact_request(self.ripen.journeys, self.ripen.tokens, token, ip=None)
        except (TokenInvalid, TokenExpired):
            return

    def _unsubscribe(self, token: str) -> None:
        self.ripen.consent.unsubscribe(token, method="simulation")

    # --- results ------------------------------------------------------------------------

    def _result(self, end: datetime) -> Result:
        spec = self.spec
        with self.ripen.uow() as uow:
            by_email = uow.leads_by_email(self.leads)
            handovers = reporting.first_handovers(uow.session)
            slowest = reporting.leads_exited(uow.session, "slowest_case")
            deferrals = reporting.deferrals_by_lead(uow.session)
            report = funnel_report(uow, spec.start, end)
            tests = abtest.results(uow, self.ripen.config)
        groups: dict[str, dict[str, list[Any]]] = {"persona": defaultdict(list),
                                                   "behaviour": defaultdict(list)}
        for person in self.leads.values():
            lead = by_email.get(person.email)
            groups["persona"][person.persona].append((person, lead))
            groups["behaviour"][person.behaviour].append((person, lead))

        def summary(members: list[tuple[SimLead, Lead | None]]) -> dict[str, Any]:
            days = sorted((handovers[lead.id] - (lead.confirmed_at or lead.created_at))
                          .total_seconds() / 86400 for _, lead in members
                          if lead is not None and lead.id in handovers)
            count = len(members)
            return {
                "leads": count,
                "confirmed": sum(1 for _, lead in members
                                 if lead is not None and lead.confirmed_at is not None),
                "mql": len(days), "mql_rate": round(len(days) / count, 4) if count else None,
                "days_to_mql_median": round(statistics.median(days), 2) if days else None,
                "days_to_mql_p90": round(p, 2) if (p := p90(days)) is not None else None,
                "mails_per_lead": round(sum(p.mails for p, _ in members) / count, 2)
                if count else 0.0,
                "deferred": sum(deferrals.get(lead.id, 0) for _, lead in members
                                if lead is not None and lead.id is not None),
                "slowest_case": sum(1 for _, lead in members
                                    if lead is not None and lead.id in slowest),
                "unsubscribed": sum(1 for _, lead in members
                                    if lead is not None and lead.status == "unsubscribed"),
            }

        coverage = {journey_id: list(steps.values()) for journey_id, steps in
                    self.coverage.items()}
        entered = {j for j, steps in coverage.items() if any(s.reached for s in steps)}
        unreached = []
        for journey_id in sorted(entered):
            journey = self.ripen.config.journeys[journey_id]
            for step in coverage[journey_id]:
                definition = journey.steps[step.step]
                if not isinstance(definition, BranchStep):
                    if step.reached == 0:
                        unreached.append(f"{journey_id}:{step.step}")
                else:  # a branch: each way out that no lead took
                    for outcome, word, target in (
                            ("branch_yes", "then", definition.branch.then),
                            ("branch_no", "otherwise", definition.branch.otherwise)):
                        if not step.outcomes.get(outcome):
                            why = _exit_rule_first(journey, step.step, definition) \
                                if outcome == "branch_yes" else ""
                            unreached.append(f"{journey_id}:{step.step} → {target} ({word})"
                                             + why)
        return Result(
            seed=spec.seed, leads=spec.leads, days=spec.days, start=spec.start.isoformat(),
            behaviours={k: float(v) for k, v in sorted(spec.behaviours.items())},
            personas={k: summary(v) for k, v in sorted(groups["persona"].items())},
            by_behaviour={k: summary(v) for k, v in sorted(groups["behaviour"].items())},
            mails=dict(sorted(self.mail_counts.items())), deferred=report.policy["deferred"],
            coverage={k: coverage[k] for k in sorted(entered)}, unreached=unreached,
            not_entered=sorted(set(coverage) - entered), report=report, ab_tests=tests)


def _exit_rule_first(journey: CompiledJourney, step_id: str, branch: BranchStep) -> str:
    """Why a branch's `then` may never be taken: the stage's exit rule reacts to the same
    engagement and moves the lead to the next stage before the branch looks again."""
    stage = journey.stage_of[step_id]
    declared = list(journey.entry)
    plan = getattr(journey.model.stages, stage.value)
    rule = plan.exit if plan is not None else None
    if rule is None and declared.index(stage) + 1 >= len(declared):
        return ""  # the last stage has no exit rule by default
    events = rule.events if rule is not None else ["click", "download"]
    when = branch.branch.when
    if when.event in events and when.stage in (None, stage) and when.content is None:
        return " — the stage's exit rule moves leads on at that same engagement first"
    return ""


def simulate(ripen: Ripen, clock: ManualClock, spec: Spec,
             progress: Callable[[int], None] | None = None) -> Result:
    """Run a simulation on ``ripen`` (built with ``clock`` on an empty database)."""
    with ripen.uow() as uow:
        if reporting.lead_count(uow.session):
            raise SimulationError("the simulation needs an empty database; it never runs on "
                                  "one that holds leads")
    return Simulation(ripen, clock, spec, progress).run()
