"""Lead scoring: explicit fit + BANT, implicit activity with half-life decay, and a grade.

Every change is a row of the score ledger (``score_entry``): rule id, config version, delta
and the event that caused it. Explicit points are synchronised with the lead's profile
(a changed job title writes the difference); implicit points are written when an event is
recorded and decay when read: ``points × 0.5 ** (age / half_life)``. The grade is the fit
letter (A best) and the engagement digit (1 best), e.g. ``B2``.

Qualifying reads the score often (every batch of events, every marked lead), so the lead
also keeps its implicit points running (``Lead.implicit_points`` as of
``implicit_points_at``): new points are added to the decayed value instead of summing the
whole ledger again. The ledger stays the record (``explain``, the handover's explanation);
a running value of another scoring model, or from before a recycle, is recomputed from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.config.compiler import CompiledConfig, model_version
from engine.config.persona import Persona
from engine.fit import fit_criteria, fit_grade, profile_of
from engine.store.tables import Account, Lead, ScoreEntry
from engine.store.uow import UnitOfWork

#: Fit letters and engagement digits from best to worst.
FIT_LETTERS = ("A", "B", "C", "D")
ENGAGEMENT_DIGITS = ("1", "2", "3", "4")


@dataclass(frozen=True)
class ScoreLine:
    kind: str               # explicit | implicit
    rule_id: str
    points: float           # as it counts now (implicit: decayed)
    delta: float            # as it was written
    at: datetime
    event_id: int | None


@dataclass(frozen=True)
class Score:
    explicit: float
    implicit: float
    fit: str
    engagement: str
    lines: tuple[ScoreLine, ...]

    @property
    def grade(self) -> str:
        return f"{self.fit}{self.engagement}"


class ScoredEvent(Protocol):
    """What scoring reads of an event (a recorded one or its row)."""

    @property
    def type(self) -> str: ...

    @property
    def content_id(self) -> str | None: ...

    @property
    def is_scanner(self) -> bool: ...


class RunningPoints(Protocol):
    """A lead's running implicit points (the lead, or a contact read for the buying
    center)."""

    @property
    def recycled_at(self) -> datetime | None: ...

    @property
    def implicit_points(self) -> float | None: ...

    @property
    def implicit_points_at(self) -> datetime | None: ...

    @property
    def implicit_points_model(self) -> str | None: ...


@dataclass(frozen=True)
class Earned:
    """Implicit points an event earned: the ledger row to write."""

    lead_id: int
    rule_id: str
    points: float
    at: datetime
    event_id: int | None


def fit_at_least(fit: str, wanted: str) -> bool:
    """``B`` is at least ``C``: letters earlier in the alphabet are better."""
    return FIT_LETTERS.index(fit) <= FIT_LETTERS.index(wanted)


class Scorer:
    def __init__(self, config: CompiledConfig) -> None:
        self.config = config
        self.scoring = config.scoring
        self.version = model_version(config.scoring)

    # --- explicit -------------------------------------------------------------------------

    def explicit_rules(self, lead: Lead, account: Account | None,
                       persona: Persona | None) -> dict[str, int]:
        """Points per explicit rule the lead meets now (fit to its persona, then BANT)."""
        points: dict[str, int] = {}
        fit, bant = self.scoring.explicit.fit, self.scoring.explicit.bant
        if persona is not None:
            for criterion in fit_criteria(profile_of(lead, account), persona):
                points[f"fit.{criterion}"] = getattr(fit, criterion)
        if lead.bant_authority:
            points["bant.authority"] = bant.authority
        if lead.bant_need:
            points["bant.need"] = bant.need
        if lead.bant_budget:
            points["bant.budget"] = bant.budget
        if lead.bant_timeline_months is not None and \
                lead.bant_timeline_months <= bant.timeline_months:
            points["bant.timeline"] = bant.timeline
        return {rule: value for rule, value in points.items() if value}

    def sync_explicit(self, uow: UnitOfWork, lead: Lead, now: datetime, *,
                      held: Mapping[str, float] | None = None,
                      account: Account | None = None,
                      ledger: list[dict[str, Any]] | None = None) -> float:
        """Write ledger rows for explicit rules that changed and return the explicit points
        now. ``held``: the lead's explicit points per rule as already read;
        ``account``: its account as already loaded (both save a query); ``ledger``: collect
        the rows there instead (a batch writes them all in one statement)."""
        assert lead.id is not None
        if account is None and lead.account_id:
            account = uow.session.get(Account, lead.account_id)
        persona = self.config.personas.get(lead.persona_id or "")
        wanted = self.explicit_rules(lead, account, persona)
        if held is None:
            held = uow.explicit_held([lead.id]).get(lead.id, {})
        rows = []
        for rule in sorted(set(wanted) | set(held)):
            delta = wanted.get(rule, 0) - held.get(rule, 0.0)
            if abs(delta) > 1e-9:
                rows.append({"lead_id": lead.id, "kind": "explicit", "rule_id": rule,
                             "config_version": self.version, "delta": delta,
                             "event_id": None, "created_at": now})
        if ledger is not None:
            ledger.extend(rows)
        else:
            uow.insert_rows(ScoreEntry, rows)
        return float(sum(wanted.values()))

    # --- implicit -------------------------------------------------------------------------

    def implicit_points(self, event: ScoredEvent) -> tuple[str, float] | None:
        """(rule id, points) an event earns, or None (scanner, unscored type)."""
        if event.is_scanner:
            return None
        implicit = self.scoring.implicit
        base = implicit.events.get(event.type)  # type: ignore[call-overload]
        if base is None:
            return None
        points = float(base)
        rule = f"implicit.{event.type}"
        item = self.config.content.get(event.content_id or "")
        if item is not None:
            weight = max((implicit.stage_weights.get(s, 1.0) for s in item.stages), default=1.0)
            points *= weight
            rule = f"implicit.{event.type}.{item.stages[0].value}" if item.stages else rule
            if implicit.content_points and event.type in ("click", "download"):
                points += item.points
        return (rule, points) if points else None

    def earned(self, events: Iterable[Any]) -> list[Earned]:
        """The implicit points recorded events earn (each dated at its event, so its decay
        starts there)."""
        found = []
        for event in events:
            points = self.implicit_points(event)
            if points is not None:
                found.append(Earned(event.lead_id, points[0], points[1], event.occurred_at,
                                    event.id))
        return found

    def record_implicit(self, uow: UnitOfWork, leads: Mapping[int, Lead],
                        earned: Sequence[Earned], now: datetime) -> None:
        """Add ``earned`` to the leads' running implicit points (recomputed from the ledger
        first where it is not current) and write its ledger rows, in one statement."""
        by_lead: dict[int, list[Earned]] = {}
        for item in earned:
            by_lead.setdefault(item.lead_id, []).append(item)
        stale = [lead_id for lead_id in by_lead if self.implicit_now(leads[lead_id], now) is None]
        ledger = uow.implicit_entries_of(stale)  # before this batch's rows are written
        for lead_id, items in by_lead.items():
            lead = leads[lead_id]
            base = self.implicit_now(lead, now)
            if base is None:
                base = self.decayed(ledger.get(lead_id, []), lead.recycled_at, now)
            self._keep(lead, base + self.decayed([(i.at, i.points) for i in items],
                                                  lead.recycled_at, now), now)
        uow.insert_rows(ScoreEntry, [{
            "lead_id": item.lead_id, "kind": "implicit", "rule_id": item.rule_id,
            "config_version": self.version, "delta": item.points, "event_id": item.event_id,
            "created_at": item.at} for item in earned])

    def implicit_now(self, lead: RunningPoints, now: datetime) -> float | None:
        """The running implicit points decayed to ``now``; None when they are not current
        (never kept, another scoring model, or kept before the lead was recycled)."""
        points, at = lead.implicit_points, lead.implicit_points_at
        if points is None or at is None or lead.implicit_points_model != self.version:
            return None
        if lead.recycled_at is not None and lead.recycled_at >= at:
            return None  # kept before (or in the instant of) the recycle
        return float(points) * math.pow(0.5, max((now - at) / self.scoring.implicit.half_life,
                                                  0.0))

    def current_implicit(self, uow: UnitOfWork, lead: Lead, now: datetime) -> float:
        """The implicit points now, from the running value (recomputed and kept when it is
        not current)."""
        assert lead.id is not None
        points = self.implicit_now(lead, now)
        if points is None:
            ledger = uow.implicit_entries_of([lead.id]).get(lead.id, [])
            points = self.decayed(ledger, lead.recycled_at, now)
            self._keep(lead, points, now)
        return points

    def decayed(self, entries: Iterable[tuple[datetime, float]], since: datetime | None,
                now: datetime) -> float:
        """Implicit ledger rows (dated at, points) decayed to ``now``, those after ``since``."""
        half_life = self.scoring.implicit.half_life
        return float(sum(delta * 0.5 ** max((now - at) / half_life, 0.0) for at, delta in entries
                         if since is None or at > since))

    def _keep(self, lead: Lead, points: float, now: datetime) -> None:
        lead.implicit_points = points
        lead.implicit_points_at = now
        lead.implicit_points_model = self.version

    def current(self, uow: UnitOfWork, lead: Lead, now: datetime, *,
                held: Mapping[str, float] | None = None,
                account: Account | None = None,
                ledger: list[dict[str, Any]] | None = None) -> Score:
        """The score qualification decides on: explicit points brought up to date, implicit
        points since the recycle from the running value (no explanation lines: those come
        from the ledger, ``score``). ``held``, ``account``, ``ledger``: see
        ``sync_explicit``."""
        explicit = self.sync_explicit(uow, lead, now, held=held, account=account,
                                      ledger=ledger)
        implicit = self.current_implicit(uow, lead, now)
        return Score(explicit=explicit, implicit=implicit,
                     fit=fit_grade(explicit, self.scoring),
                     engagement=self.engagement_digit(implicit), lines=())

    # --- reading --------------------------------------------------------------------------

    def score(self, uow: UnitOfWork, lead: Lead, now: datetime, *,
              since: datetime | None = None,
              entries: Sequence[ScoreEntry] | None = None) -> Score:
        """The lead's score; with ``since``, implicit points earned before it do not count
        (a recycled lead must ripen again on new evidence)."""
        assert lead.id is not None
        if entries is None:
            entries = uow.score_entries(lead.id)
        if since is not None:
            entries = [e for e in entries if e.kind == "explicit" or e.created_at > since]
        return self.from_entries(entries, now)

    def from_entries(self, entries: Sequence[ScoreEntry], now: datetime) -> Score:
        half_life = self.scoring.implicit.half_life
        lines = []
        explicit = implicit = 0.0
        for entry in entries:
            if entry.kind == "explicit":
                value = entry.delta
                explicit += value
            else:
                age = max((now - entry.created_at) / half_life, 0.0)
                value = entry.delta * 0.5 ** age
                implicit += value
            lines.append(ScoreLine(entry.kind, entry.rule_id, value, entry.delta,
                                   entry.created_at, entry.event_id))
        return Score(explicit=explicit, implicit=implicit, fit=fit_grade(explicit, self.scoring),
                     engagement=self.engagement_digit(implicit), lines=tuple(lines))

    def engagement_digit(self, points: float) -> str:
        grades = self.scoring.grades.engagement
        for digit, threshold in zip(ENGAGEMENT_DIGITS[:-1], (grades.e1, grades.e2, grades.e3),
                                    strict=True):
            if points >= threshold:
                return digit
        return "4"
