"""Lead scoring: explicit fit + BANT, implicit activity with half-life decay, and a grade.

Every change is a row of the score ledger (``score_entry``): rule id, config version, delta
and the event that caused it. Explicit points are synchronised with the lead's profile
(a changed job title writes the difference); implicit points are written when an event is
recorded and decay when read: ``points × 0.5 ** (age / half_life)``. The grade is the fit
letter (A best) and the engagement digit (1 best), e.g. ``B2``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.config.compiler import CompiledConfig, model_version
from engine.config.persona import Persona
from engine.fit import fit_criteria, fit_grade, profile_of
from engine.store.tables import Account, Event, Lead, ScoreEntry
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

    def sync_explicit(self, uow: UnitOfWork, lead: Lead, now: datetime,
                      entries: Sequence[ScoreEntry] | None = None) -> list[ScoreEntry]:
        """Write ledger rows for explicit rules that changed; return them (empty: none did).

        ``entries``: the lead's ledger as already read (saves a query)."""
        assert lead.id is not None
        account = uow.session.get(Account, lead.account_id) if lead.account_id else None
        persona = self.config.personas.get(lead.persona_id or "")
        wanted = self.explicit_rules(lead, account, persona)
        held: dict[str, float] = defaultdict(float)
        if entries is None:
            entries = uow.score_entries(lead.id, kind="explicit")
        for entry in entries:
            if entry.kind == "explicit":
                held[entry.rule_id] += entry.delta
        written = []
        for rule in sorted(set(wanted) | set(held)):
            delta = wanted.get(rule, 0) - held.get(rule, 0.0)
            if abs(delta) > 1e-9:
                written.append(ScoreEntry(lead_id=lead.id, kind="explicit", rule_id=rule,
                                          config_version=self.version, delta=delta,
                                          created_at=now))
        uow.insert_rows(ScoreEntry, [entry.model_dump(exclude={"id"}) for entry in written])
        return written

    # --- implicit -------------------------------------------------------------------------

    def implicit_points(self, event: Event) -> tuple[str, float] | None:
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

    def record_events(self, uow: UnitOfWork, events: Sequence[Event]) -> None:
        """The ledger rows for events, in one statement (each dated at its event, so its
        decay starts there)."""
        rows = []
        for event in events:
            earned = self.implicit_points(event)
            if earned is not None and event.id is not None:
                rows.append({"lead_id": event.lead_id, "kind": "implicit",
                             "rule_id": earned[0], "config_version": self.version,
                             "delta": earned[1], "event_id": event.id,
                             "created_at": event.occurred_at})
        uow.insert_rows(ScoreEntry, rows)

    # --- reading --------------------------------------------------------------------------

    def synced_score(self, uow: UnitOfWork, lead: Lead, now: datetime,
                     entries: Sequence[ScoreEntry] | None = None) -> Score:
        """Explicit points brought up to date, then the score since the lead's recycle
        (``entries``: the lead's whole ledger as already read)."""
        assert lead.id is not None
        if entries is None:
            entries = uow.score_entries(lead.id)
        entries = [*entries, *self.sync_explicit(uow, lead, now, entries)]
        return self.score(uow, lead, now, since=lead.recycled_at, entries=entries)

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
