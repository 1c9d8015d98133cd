"""What the marketer's workbench shows, read from the store: live counts per journey step,
the leads at a step, and a lead search. It reads; it changes nothing (but for the failed
sign-ins its login counts).

Counts per step (every version of the journey together, as a marketer thinks of it):
``active`` leads whose enrollment waits at the step, of them ``due`` now, ``quarantined``
leads stopped there, ``sent`` mails of the step in the last seven days and, of those,
``clicked`` (a click on one of the mail's own links, mail scanners left out).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from engine.store import workbench as queries
from engine.store.tables import Enrollment, Lead
from engine.store.uow import UnitOfWork

WEEK = timedelta(days=7)
#: Failed sign-ins an address may make within ``SIGN_IN_LOCKOUT`` before it must wait. The
#: failures are counted in the database (every API process counts the same) and kept for
#: that window only (the maintenance run purges older ones).
FAILED_SIGN_INS = 10
SIGN_IN_LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class StepCounts:
    active: int = 0
    due: int = 0
    quarantined: int = 0
    sent: int = 0
    clicked: int = 0

    @property
    def click_rate(self) -> float | None:
        return self.clicked / self.sent if self.sent else None


@dataclass(frozen=True)
class LeadRow:
    public_id: str
    email: str | None
    name: str
    company: str | None
    status: str
    stage: str
    enrollment_status: str | None = None
    due_at: datetime | None = None
    reason: str | None = None


def _place_of(key: str) -> tuple[str, str] | None:
    """(journey, step) of a journey mail's outbox key ``journey:ID@VERSION:STEP:LEAD``."""
    parts = key.split(":")
    if len(parts) != 4 or "@" not in parts[1]:
        return None
    return parts[1].split("@", 1)[0], parts[2]


def step_counts(uow: UnitOfWork, journey_id: str, now: datetime) -> dict[str, StepCounts]:
    """Every step of the journey that has something to count."""
    return counts_by_journey(uow, now, journey_id).get(journey_id, {})


def counts_by_journey(uow: UnitOfWork, now: datetime, journey_id: str | None = None
                      ) -> dict[str, dict[str, StepCounts]]:
    """Step counts of one journey, or of every journey at once (the overview: the same
    four queries, not four per journey)."""
    waiting: Counter[tuple[str, str]] = Counter()
    due: Counter[tuple[str, str]] = Counter()
    held: Counter[tuple[str, str]] = Counter()
    for journey, step, status, count, due_now in queries.enrollment_counts(
            uow.session, journey_id, now):
        if status == "active":
            waiting[journey, step] += count
            due[journey, step] += int(due_now or 0)
        else:
            held[journey, step] += count
    sent: Counter[tuple[str, str]] = Counter()
    keys: dict[str, tuple[str, str]] = {}
    for key in queries.sent_keys(uow.session, journey_id, now - WEEK):
        where = _place_of(key)
        if where is not None:
            sent[where] += 1
            keys[key] = where
    clicks: Counter[tuple[str, str]] = Counter()
    if keys:
        tokens = queries.clicked_tokens(uow.session, now - WEEK)
        links = queries.link_keys(uow.session, journey_id, now - WEEK, tokens)
        clicked = {links.get(token) for token in tokens}
        clicks.update(keys[key] for key in clicked if key in keys)
    found: dict[str, dict[str, StepCounts]] = {}
    for place in set(waiting) | set(held) | set(sent):
        found.setdefault(place[0], {})[place[1]] = StepCounts(
            waiting[place], due[place], held[place], sent[place], clicks[place])
    return found


def per_journey(counts: dict[str, StepCounts]) -> StepCounts:
    """The journey's totals."""
    return StepCounts(**{f.name: sum(getattr(c, f.name) for c in counts.values())
                         for f in fields(StepCounts)})


def _row(lead: Lead, company: str | None, enrollment: Enrollment | None = None) -> LeadRow:
    return LeadRow(
        public_id=lead.public_id, email=lead.email,
        name=" ".join(filter(None, (lead.first_name, lead.last_name))), company=company,
        status=lead.status, stage=lead.funnel_stage,
        enrollment_status=enrollment.status if enrollment else None,
        due_at=enrollment.due_at if enrollment else None,
        reason=enrollment.quarantine_reason if enrollment else None)


def leads_at_step(uow: UnitOfWork, journey_id: str, step_id: str, *,
                  limit: int = 200) -> list[LeadRow]:
    """The leads waiting (or quarantined) at a step, the longest due first."""
    return [_row(lead, company, enrollment) for lead, company, enrollment
            in queries.leads_at_step(uow.session, journey_id, step_id, limit)]


def search(uow: UnitOfWork, text: str, *, limit: int = 50) -> list[LeadRow]:
    """Leads whose address, name or company contains ``text`` (any case)."""
    wanted = text.strip().lower()[:100]
    if not wanted:
        return []
    return [_row(lead, company) for lead, company  # (% and _ in it match widely: harmless)
            in queries.search(uow.session, f"%{wanted}%", limit)]
