"""The funnel report (BITKOM success factor 4, transparency): one set of numbers marketing
and sales both look at.

Cohort view: the leads that came in during the period, and how far each got in the demand
waterfall (Inquiry → MQL → SAL → Won), in total and by persona, source and campaign, and in
the advanced funnel (INF … BEW, AFS … CUS) with the days they spent in each stage
(velocity). Then what happened in the period: handovers (fast-lane share, SLA, rejection
reasons, recycled leads that became MQL again); content and journey performance (sends,
clicks, downloads, stage advances, unsubscribes and bounces — the opt-out rate shows how
relevant content is); sends the contact policy deferred or suppressed; sources ranked by
quality; and data quality (what explicit scoring lacks, merged duplicates, refused
addresses).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import RipenError
from engine.store import reporting
from engine.store.tables import Lead, SentContent, StageEntry
from engine.store.uow import UnitOfWork

WATERFALL = ("inquiries", "mql", "sal", "sql", "won")
#: Sales stages that mean sales qualified the lead as an opportunity (SQL): from the needs
#: analysis (Bedarfsanalyse) on.
QUALIFIED = frozenset({"BAN", "BCI", "LPN", "ANG", "ABS"})
#: The advanced funnel's two runs of stages: nurturing and existing customers.
STAGE_RUNS = (("INF", "BEF", "EVA", "BEW"), ("AFS", "WIK", "CUS"))


@dataclass
class StageFlow:
    """One stage of the advanced funnel for the cohort: how many reached it (or a later
    stage of its run), the share of the previous stage's, and the days spent in it."""

    stage: str
    reached: int
    conversion: float | None  # reached / reached of the previous stage of the run
    stays: int                # finished stays measured (left for a later stage or sales)
    days_median: float | None
    days_p90: float | None


@dataclass
class Waterfall:
    inquiries: int = 0
    mql: int = 0
    sal: int = 0
    sql: int = 0
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
    content: dict[str, dict[str, Any]]
    source_ranking: list[dict[str, Any]]
    data_quality: dict[str, int] = field(default_factory=dict)
    stages: list[StageFlow] = field(default_factory=list)
    journeys: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"], data["end"] = self.start.isoformat(), self.end.isoformat()
        data["total"]["conversions"] = self.total.conversions()
        for group in ("by_persona", "by_source", "by_campaign"):
            for key, waterfall in getattr(self, group).items():
                data[group][key]["conversions"] = waterfall.conversions()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunnelReport:
        """The report ``as_json`` wrote (a kept report is stored that way)."""
        def waterfall(counts: dict[str, Any]) -> Waterfall:
            return Waterfall(**{stage: int(counts[stage]) for stage in WATERFALL})

        fields = dict(data)
        fields["start"] = datetime.fromisoformat(data["start"])
        fields["end"] = datetime.fromisoformat(data["end"])
        fields["total"] = waterfall(data["total"])
        for group in ("by_persona", "by_source", "by_campaign"):
            fields[group] = {key: waterfall(counts) for key, counts in data[group].items()}
        fields["stages"] = [StageFlow(**flow) for flow in data["stages"]]
        return cls(**fields)


def day(text: str, option: str) -> datetime:
    """Midnight UTC of a day written YYYY-MM-DD; RipenError names ``option``."""
    try:
        value = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise RipenError(f'{option} "{text[:40]}" is not a date like 2026-10-01') from None
    if not 1970 <= value.year <= 9000:  # periods are computed around it
        raise RipenError(f"{option} {text} is not a date between 1970 and 9000")
    return value


def period(since: str | None, until: str | None, now: datetime, *, default_days: int = 91,
           names: tuple[str, str] = ("since", "until")) -> tuple[datetime, datetime]:
    """[start, end) from days written YYYY-MM-DD (``until`` exclusive; default: today
    inclusive, the ``default_days`` before it). ``names``: the options, for errors."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = day(until, names[1]) if until else today + timedelta(days=1)
    start = day(since, names[0]) if since else end - timedelta(days=default_days)
    if start >= end:
        raise RipenError(f"{names[0]} must be before {names[1]}")
    return start, end


def p90(values: list[float]) -> float | None:
    """The 90th percentile (nearest rank), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def funnel_report(uow: UnitOfWork, start: datetime, end: datetime) -> FunnelReport:
    """Everything for the period [start, end)."""
    session = uow.session
    leads = reporting.leads_created(session, start, end)
    ids = [lead.id for lead in leads if lead.id is not None]
    handovers_of = reporting.handovers_of(session, ids)
    sales_stages = reporting.sales_stages_of(session, ids)
    total = Waterfall()
    groups: dict[str, dict[str, Waterfall]] = {"persona": defaultdict(Waterfall),
                                               "source": defaultdict(Waterfall),
                                               "campaign": defaultdict(Waterfall)}
    # Counted per (persona, source, campaign, stages reached) first: 100k leads fall into a
    # few hundred such cells, and the waterfalls are filled from those.
    tally: Counter[tuple[str, str, str, tuple[bool, ...]]] = Counter()
    for lead in leads:
        mine = handovers_of.get(lead.id or 0, ())
        won = any(h.outcome == "won" for h in mine)
        reached = (True, lead.mql_at is not None or bool(mine),
                   any(h.status in ("accepted", "closed") for h in mine),
                   bool(sales_stages.get(lead.id or 0, set()) & QUALIFIED) or won, won)
        tally[(lead.persona_id or "none", lead.source or "unknown",
               lead.campaign or "none", reached)] += 1
    for (persona, source, campaign, stages), count in tally.items():
        for stage, yes in zip(WATERFALL, stages, strict=True):
            if not yes:
                continue
            for waterfall in (total, groups["persona"][persona], groups["source"][source],
                              groups["campaign"][campaign]):
                setattr(waterfall, stage, getattr(waterfall, stage) + count)

    made = reporting.handovers_made(session, start, end)
    hours = [(h.answered_at - h.created_at).total_seconds() / 3600 for h in made
             if h.answered_at is not None]
    rejections = Counter(h.rejection_code for h in made if h.rejection_code)
    recycled = reporting.recycled(session, start, end)

    content: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"sends": 0, "clicks": 0, "downloads": 0, "stage_advances": 0,
                 "unsubscribes": 0, "bounces": 0})
    sent = reporting.sends(session, start, end)
    for content_id, sends in Counter(row.content_id for row in sent).items():
        content[content_id]["sends"] = sends
    for content_id, kind, count in reporting.engagement_by_content(session, start, end):
        content[content_id]["clicks" if kind == "click" else "downloads"] = count
    for content_id, count in _stage_advances(session, start, end).items():
        content[content_id]["stage_advances"] = count
    journeys = _journeys(session, start, end, sent, content)
    for counts in content.values():
        counts["unsubscribe_rate"] = _rate(counts["unsubscribes"], counts["sends"])
        counts["bounce_rate"] = _rate(counts["bounces"], counts["sends"])
    deferred: Counter[str] = Counter()
    for journey_id, reason, count in reporting.deferrals(session, start, end):
        deferred[reason] += count
        journeys.setdefault(journey_id, _journey_row())["deferred"] += count

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
    quality["merged_duplicates"] = reporting.merged_signups(session, start, end)
    quality["refused_addresses"] = reporting.refused_signups(session, start, end)

    return FunnelReport(
        start=start, end=end, total=total,
        by_persona=dict(groups["persona"]), by_source=dict(groups["source"]),
        by_campaign=dict(groups["campaign"]), handovers=len(made),
        fast_lane=sum(1 for h in made if h.reason == "fast_lane"),
        answered=len(hours), breaches=sum(1 for h in made if h.breached),
        hours_to_answer_median=statistics.median(hours) if hours else None,
        hours_to_answer_p90=p90(hours), rejection_reasons=dict(rejections),
        recycled=len(recycled), recycled_to_mql=sum(1 for _, again in recycled if again),
        content={k: dict(v) for k, v in sorted(content.items())}, source_ranking=ranking,
        data_quality=dict(quality), stages=_stage_flows(session, leads, handovers_of),
        journeys=dict(sorted(journeys.items())),
        policy={"deferred": dict(sorted(deferred.items())),
                "suppressed": dict(sorted(reporting.suppressed_sends(session, start,
                                                                     end).items()))})


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _journey_row() -> dict[str, Any]:
    return {"sends": 0, "unsubscribes": 0, "bounces": 0, "deferred": 0}


def _journeys(session: Any, start: datetime, end: datetime, sent: Sequence[SentContent],
              content: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sends, unsubscribes and bounces per journey (and onto ``content``): an unsubscribe
    counts against the last journey mail the lead got before it; a bounce against its mail."""
    journeys: dict[str, dict[str, Any]] = defaultdict(_journey_row)
    for row in sent:
        journeys[row.journey_id]["sends"] += 1
    left = reporting.unsubscribes(session, start, end)
    bounced = [(int(parts[3]), parts[1].split("@")[0], parts[2]) for parts in
               (key.split(":") for key in reporting.bounced_mails(session, start, end))
               if len(parts) == 4 and parts[3].isdigit()]
    history = reporting.sent_content_of(session, [lead for lead, _ in left] +
                                        [lead for lead, _, _ in bounced])
    for lead_id, when in left:
        before = [s for s in history.get(lead_id, []) if s.sent_at <= when]
        if before:
            journeys[before[-1].journey_id]["unsubscribes"] += 1
            content[before[-1].content_id]["unsubscribes"] += 1
    for lead_id, journey_id, step_id in bounced:
        journeys[journey_id]["bounces"] += 1
        mail = next((s for s in history.get(lead_id, [])
                     if s.journey_id == journey_id and s.step_id == step_id), None)
        if mail is not None:
            content[mail.content_id]["bounces"] += 1
    for counts in journeys.values():
        counts["unsubscribe_rate"] = _rate(counts["unsubscribes"], counts["sends"])
        counts["bounce_rate"] = _rate(counts["bounces"], counts["sends"])
    return journeys


def _stage_advances(session: Any, start: datetime, end: datetime) -> Counter[str]:
    """Stage entries caused by engaging with a content item (the entry was recorded in the
    same transaction as the click or download)."""
    cause = {(lead, at): content for lead, content, at in
             reporting.engagements(session, start, end)}
    return Counter(content for entry in reporting.stage_entries(session, start, end)
                   if (content := cause.get((entry.lead_id, entry.entered_at))))


def _stage_flows(session: Any, leads: Sequence[Lead],
                 handovers_of: dict[int, list[Any]]) -> list[StageFlow]:
    entries = reporting.stage_entries_of(session, [lead.id for lead in leads
                                                   if lead.id is not None])
    furthest: dict[str, int] = Counter()
    days: dict[str, list[float]] = defaultdict(list)
    for lead in leads:
        mine = entries.get(lead.id or 0, [])
        handed = [h.created_at for h in handovers_of.get(lead.id or 0, [])]
        for run in STAGE_RUNS:
            seen = [e.stage for e in mine if e.stage in run]
            if seen:
                top = max(run.index(stage) for stage in seen)
                for stage in run[:top + 1]:
                    furthest[stage] += 1
        for entry, end in _stays(mine, lead.mql_at, handed):
            days[entry.stage].append((end - entry.entered_at).total_seconds() / 86400)
    flows = []  # in funnel order: the runs and their stages are
    for run in STAGE_RUNS:
        if not any(furthest[stage] for stage in run):
            continue
        previous: int | None = None
        for stage in run:
            spent = days.get(stage, [])
            flows.append(StageFlow(
                stage=stage, reached=furthest[stage],
                conversion=_rate(furthest[stage], previous) if previous is not None else None,
                stays=len(spent),
                days_median=round(statistics.median(spent), 2) if spent else None,
                days_p90=round(p, 2) if (p := p90(spent)) is not None else None))
            previous = furthest[stage]
    return flows


def _stays(entries: list[StageEntry], mql_at: datetime | None,
           handed: list[datetime]) -> Iterator[tuple[StageEntry, datetime]]:
    """Each finished stay: until the next stage entry of the same journey, or until the
    lead went to sales (MQL, fast lane) from it."""
    to_sales = sorted([t for t in [mql_at, *handed] if t is not None])
    for position, entry in enumerate(entries):
        after = next((e.entered_at for e in entries[position + 1:]
                      if e.journey_id == entry.journey_id), None)
        sales = next((t for t in to_sales if t >= entry.entered_at), None)
        ends = [t for t in (after, sales) if t is not None]
        if ends:
            yield entry, min(ends)
