"""What the marketer's workbench shows, read from the store: live counts per journey step,
the leads at a step, and a lead search. It reads; it changes nothing.

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


def _step_of(key: str) -> str | None:
    """The step of a journey mail's outbox key ``journey:ID@VERSION:STEP:LEAD``."""
    parts = key.split(":")
    return parts[2] if len(parts) == 4 else None


def step_counts(uow: UnitOfWork, journey_id: str, now: datetime) -> dict[str, StepCounts]:
    """Every step of the journey that has something to count."""
    waiting: Counter[str] = Counter()
    due: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for step, status, count, due_now in queries.enrollment_counts(uow.session, journey_id,
                                                                  now):
        if status == "active":
            waiting[step] += count
            due[step] += int(due_now or 0)
        else:
            held[step] += count
    sent: Counter[str] = Counter()
    keys: dict[str, str] = {}
    for key in queries.sent_keys(uow.session, journey_id, now - WEEK):
        step = _step_of(key)
        if step is not None:
            sent[step] += 1
            keys[key] = step
    clicks: Counter[str] = Counter()
    if keys:
        links = queries.link_keys(uow.session, journey_id, now - WEEK)
        clicked = {links.get(token) for token in queries.clicked_tokens(uow.session,
                                                                        now - WEEK)}
        clicks.update(keys[key] for key in clicked if key in keys)
    steps = set(waiting) | set(held) | set(sent)
    return {step: StepCounts(waiting[step], due[step], held[step], sent[step], clicks[step])
            for step in steps}


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
