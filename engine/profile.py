"""What a lead's company is, and what sales or tele-qualification learned: profile and BANT.

Explicit scoring looks at the lead's job title, its account's industry, size and region, and
the BANT flags (seed 003). Forms and imports fill these in where empty; the CRM or a
tele-qualification call may change them (``Profiles.update``). A change is scored at once
(explicit ledger rows) and may make the lead an MQL in the same transaction; colleagues of
the same account are marked for scoring on the next tick (their fit changed too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

from engine import lead_fields
from engine.accounts import AccountFacts, ProfileError, attach_account
from engine.clock import Clock
from engine.handover import HandoverService
from engine.scoring import Score
from engine.store.tables import Account, Event, Handover, Lead
from engine.store.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class ProfileChange:
    """What changes; fields left ``None`` stay as they are."""

    job_title: str | None = None
    company: str | None = None
    account: AccountFacts = field(default_factory=AccountFacts)
    bant_authority: bool | None = None
    bant_need: bool | None = None
    bant_budget: bool | None = None
    bant_timeline_months: int | None = None

    def changed(self) -> list[str]:
        names = [f.name for f in fields(self) if f.name != "account"
                 and getattr(self, f.name) is not None]
        return names + [f.name for f in fields(self.account)
                        if getattr(self.account, f.name) is not None]


@dataclass(frozen=True)
class ProfileResult:
    lead: Lead
    score: Score
    handover: Handover | None


class Profiles:
    def __init__(self, *, uow: UowFactory, handovers: HandoverService, clock: Clock) -> None:
        self.uow = uow
        self.handovers = handovers
        self.clock = clock

    def update(self, lead_public_id: str, change: ProfileChange, *,
               source: str = "crm") -> ProfileResult:
        """Apply the change, score it and hand the lead over if it is now an MQL."""
        if not change.changed():
            raise ProfileError("nothing to change: give job_title, company, industry, "
                               "company_size, region or a BANT field")
        for name in ("job_title", "company"):
            value = getattr(change, name)
            if value is not None and lead_fields.text(name, value) is None:
                raise ProfileError(f"{name} is empty; leave it out to keep it")
        months = change.bant_timeline_months
        if months is not None and not 0 <= months <= 120:
            raise ProfileError(f"bant_timeline_months {months} is not between 0 and 120")
        now = self.clock()
        with self.uow() as uow:
            lead = uow.lead_by_public_id(lead_public_id)
            if lead is None or lead.id is None or lead.status == "erased":
                raise ProfileError("no such lead")
            if change.company is not None and lead.account_id is not None:
                current = uow.session.get(Account, lead.account_id)
                if current is not None and current.name != change.company.strip():
                    lead.account_id = None  # the person changed companies
            account = attach_account(uow, lead, (change.company or "").strip() or None,
                                     change.account, now, overwrite=True)
            if change.job_title is not None:
                lead.job_title = change.job_title.strip()
            for name in ("bant_authority", "bant_need", "bant_budget", "bant_timeline_months"):
                value = getattr(change, name)
                if value is not None:
                    setattr(lead, name, value)
            lead.updated_at = now
            uow.add(lead)
            uow.add(Event(lead_id=lead.id, type="profile_updated", source=source,
                          data={"fields": change.changed()}, occurred_at=now,
                          recorded_at=now))
            if account is not None and account.id is not None and change.account:
                uow.qualify_account(account.id, now, besides=lead.id)  # their fit changed too
            uow.flush()
            self.handovers.scorer.sync_explicit(uow, lead, now)
            uow.flush()
            handover = self.handovers.evaluate(uow, lead, now)
            uow.flush()
            score = self.handovers.scorer.score(uow, lead, now, since=lead.recycled_at)
            uow.commit()
            return ProfileResult(lead, score, handover)
