"""The funnel report (BITKOM success factor 4, transparency): one set of numbers marketing
and sales both look at.

Cohort view: the leads that came in during the period, and how far each got in the demand
waterfall (Inquiry → MQL → SAL → Won), in total and by persona, source and campaign. Then
the handovers made in the period: fast-lane share, SLA (time to answer, breaches),
rejection reasons, recycled leads that became MQL again; content performance; sources
ranked by quality; and data quality (what explicit scoring lacks).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from engine.store import reporting
from engine.store.uow import UnitOfWork

WATERFALL = ("inquiries", "mql", "sal", "won")


@dataclass
class Waterfall:
    inquiries: int = 0
    mql: int = 0
    sal: int = 0
    won: int = 0

    def conversions(self) -> dict[str, float | None]:
        counts = [getattr(self, stage) for stage in WATERFALL]
        return {f"{a}_to_{b}": (after / before if before else None)
                for a, b, before, after in zip(WATERFALL, WATERFALL[1:], counts, counts[1:],
                                               strict=False)}


@dataclass
class FunnelReport:
    start: datetime
    end: datetime
    total: Waterfall
    by_persona: dict[str, Waterfall]
    by_source: dict[str, Waterfall]
    by_campaign: dict[str, Waterfall]
    handovers: int
    fast_lane: int
    answered: int
    breaches: int
    hours_to_answer_median: float | None
    hours_to_answer_p90: float | None
    rejection_reasons: dict[str, int]
    recycled: int
    recycled_to_mql: int
    content: dict[str, dict[str, int]]
    source_ranking: list[dict[str, Any]]
    data_quality: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data["total"]["conversions"] = self.total.conversions()
        for group in ("by_persona", "by_source", "by_campaign"):
            for key, waterfall in getattr(self, group).items():
                data[group][key]["conversions"] = waterfall.conversions()
        return data


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def funnel_report(uow: UnitOfWork, start: datetime, end: datetime) -> FunnelReport:
    """Everything for the period [start, end)."""
    session = uow.session
    leads = reporting.leads_created(session, start, end)
    handovers_of = reporting.handovers_of(session, [lead.id for lead in leads
                                                    if lead.id is not None])
    total = Waterfall()
    groups: dict[str, dict[str, Waterfall]] = {"persona": defaultdict(Waterfall),
                                               "source": defaultdict(Waterfall),
                                               "campaign": defaultdict(Waterfall)}
    for lead in leads:
        mine = handovers_of.get(lead.id or 0, [])
        reached = {"inquiries": True, "mql": lead.mql_at is not None or bool(mine),
                   "sal": any(h.status in ("accepted", "closed") for h in mine),
                   "won": any(h.outcome == "won" for h in mine)}
        keys = {"persona": lead.persona_id or "none", "source": lead.source or "unknown",
                "campaign": lead.campaign or "none"}
        for stage, yes in reached.items():
            if yes:
                setattr(total, stage, getattr(total, stage) + 1)
                for group, key in keys.items():
                    waterfall = groups[group][key]
                    setattr(waterfall, stage, getattr(waterfall, stage) + 1)

    made = reporting.handovers_made(session, start, end)
    hours = [(h.answered_at - h.created_at).total_seconds() / 3600 for h in made
             if h.answered_at is not None]
    rejections = Counter(h.rejection_code for h in made if h.rejection_code)
    recycled = reporting.recycled(session, start, end)

    content: dict[str, dict[str, int]] = defaultdict(lambda: {"sends": 0, "clicks": 0,
                                                              "downloads": 0})
    for content_id, sends in reporting.sends_by_content(session, start, end).items():
        content[content_id]["sends"] = sends
    for content_id, kind, count in reporting.engagement_by_content(session, start, end):
        content[content_id]["clicks" if kind == "click" else "downloads"] = count

    ranking: list[dict[str, Any]] = [
        {"source": source, "leads": w.inquiries, "sal_rate": w.sal / w.inquiries,
         "won_rate": w.won / w.inquiries} for source, w in groups["source"].items()]
    ranking.sort(key=lambda row: (-row["won_rate"], -row["sal_rate"], -row["leads"],
                                  row["source"]))

    confirmed = [lead for lead in leads if lead.status == "confirmed"]
    accounts = uow.accounts_by_id(lead.account_id for lead in confirmed
                                  if lead.account_id is not None)
    quality: Counter[str] = Counter()
    for lead in confirmed:
        account = accounts.get(lead.account_id) if lead.account_id else None
        quality["confirmed"] += 1
        quality["missing_job_title"] += not lead.job_title
        quality["missing_company"] += account is None
        quality["missing_industry"] += account is None or not account.industry
        quality["missing_company_size"] += account is None or account.company_size is None
        quality["missing_region"] += account is None or not account.region

    return FunnelReport(
        start=start, end=end, total=total,
        by_persona=dict(groups["persona"]), by_source=dict(groups["source"]),
        by_campaign=dict(groups["campaign"]), handovers=len(made),
        fast_lane=sum(1 for h in made if h.reason == "fast_lane"),
        answered=len(hours), breaches=sum(1 for h in made if h.breached),
        hours_to_answer_median=statistics.median(hours) if hours else None,
        hours_to_answer_p90=_p90(hours), rejection_reasons=dict(rejections),
        recycled=len(recycled), recycled_to_mql=sum(1 for _, again in recycled if again),
        content={k: dict(v) for k, v in sorted(content.items())}, source_ranking=ranking,
        data_quality=dict(quality))
