"""Reports and planning: the funnel report, funnel planning, simulation."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from engine.config.compiler import load_and_compile
from engine.errors import RipenError
from ripen.cli._common import (
    RootOption,
    app,
    config_paths,
    load_cli_settings,
    open_ripen,
    out,
)
from ripen.cli.output import JsonOption, print_json, table

if TYPE_CHECKING:
    from engine.abtest import AbTestResult


@app.command()
def plan(
    revenue: Annotated[float, typer.Option(help="Revenue target for the period (EUR)")],
    deal_size: Annotated[float, typer.Option(help="Average deal size (EUR)")],
    rate: Annotated[list[str] | None, typer.Option(
        help="A conversion rate FROM:TO=RATE (stages target, lead, mql, sal, won), e.g. "
             "--rate lead:mql=0.25 --rate mql:sal=50% --rate sal:won=0.3; repeat to chain "
             "[default: planning.rates in config/sla.yaml, else history, else the rule of "
             "ten]", show_default=False)] = None,
    history_days: Annotated[int, typer.Option(
        help="Look-back for historic rates and source shares (days)")] = 365,
    no_history: Annotated[bool, typer.Option(
        "--no-history", help="Do not read the database (rates from --rate or rule of ten)")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Funnel planning: how many leads each stage needs for a revenue target, per source,
    and whether the open pipeline reaches it."""

    from engine.plan import RULE_OF_TEN, History, expected_customers, funnel_plan, parse_rates
    from engine.report import funnel_report

    history = pipeline = None
    if not no_history:
        with open_ripen() as ripen_app, ripen_app.uow() as uow:
            now = ripen_app.clock()
            history = History.of(funnel_report(uow, now - timedelta(days=history_days),
                                               now + timedelta(seconds=1)))
            pipeline = uow.open_pipeline()
    chain = parse_rates(rate or [])
    source = "command line"
    if not chain:
        agreed = load_and_compile(config_paths(None)).sla.planning.rates
        chain, source = parse_rates(agreed), "config/sla.yaml"
    if not chain and history is not None and history.rates() is not None:
        chain, source = history.rates() or (), f"history ({history_days} days)"
    if not chain:
        chain, source = RULE_OF_TEN, "rule of ten (500 → 50 → 5)"
    result = funnel_plan(revenue=revenue, deal_size=deal_size, rates=chain, rates_from=source,
                         history=history)
    expected = expected_customers(pipeline, chain) if pipeline is not None else None
    if as_json:
        print_json({
            "revenue": revenue, "deal_size": deal_size, "customers": result.customers,
            "rates_from": source,
            "stages": [{"stage": step.stage, "needed": step.needed,
                        "rate_to_next": step.rate_to_next} for step in result.steps],
            "by_source": [{"source": name, "leads_needed": needed, "lead_to_won": won}
                          for name, needed, won in result.by_source],
            "pipeline": None if pipeline is None or expected is None else {
                **pipeline, "expected_customers": expected,
                "reaches_target": expected >= result.customers}})
        return
    out.print(f"{result.customers} customers needed (revenue {revenue:,.0f} / deal size "
              f"{deal_size:,.0f}); rates from {source}", markup=False, soft_wrap=True)
    stages = table("stage", "needed", "conversion to next", right=("needed", "conversion to next"))
    for step in result.steps:
        stages.add_row(step.stage, f"{step.needed:,}",
                       f"{step.rate_to_next:.1%}" if step.rate_to_next is not None else "")
    out.print(stages)
    if result.by_source:
        sources = table("source", "leads needed (historic share)", "lead → won",
                        right=("leads needed (historic share)", "lead → won"))
        for name, needed, won in result.by_source:
            sources.add_row(name, f"{needed:,}", f"{won:.1%}" if won is not None else "-")
        out.print(sources)
    if pipeline is not None and expected is not None:
        verdict = "reaches" if expected >= result.customers else "does not reach"
        out.print(f"open pipeline: {pipeline['mql']} MQL, {pipeline['sal']} with sales (SAL "
                  f"or later) → about {expected:.1f} customers: it {verdict} the target of "
                  f"{result.customers}", markup=False, soft_wrap=True)


@app.command()
def report(
    since: Annotated[str | None, typer.Option(
        help="First day of the period (YYYY-MM-DD) [default: 90 days ago]",
        show_default=False)] = None,
    until: Annotated[str | None, typer.Option(
        help="Day after the period (YYYY-MM-DD) [default: tomorrow]", show_default=False)
    ] = None,
    as_json: JsonOption = False,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Also write a self-contained HTML report with charts to this file",
        show_default=False)] = None,
) -> None:
    """The funnel for a period: the demand waterfall (Inquiry → MQL → SAL → Won) in total
    and by persona, source and campaign; the advanced funnel (INF … BEW) with velocity;
    fast-lane share, SLA, rejection reasons, recycled leads; content and journey performance
    (sends, clicks, stage advances, unsubscribe and bounce rates); sends deferred or
    suppressed by policy; sources ranked by quality; data quality."""
    from datetime import timedelta

    from engine import abtest
    from engine.report import WATERFALL, funnel_report, period

    with open_ripen() as ripen_app, ripen_app.uow() as uow:
        start, end = period(since, until, ripen_app.clock(), names=("--since", "--until"))
        result = funnel_report(uow, start, end)
        tests = abtest.results(uow, ripen_app.config)
        generated = ripen_app.wall()
    if html is not None:
        from ripen import html_report

        html_report.write(html, html_report.render(
            result, title="ripen funnel report", generated=generated,
            ab_tests=[test.as_json() for test in tests]))
        if not as_json:
            out.print(f"HTML report written to {html}", markup=False, soft_wrap=True)
    if as_json:
        print_json({**result.as_json(), "ab_tests": [test.as_json() for test in tests]})
        return
    out.print(f"{start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d}; →MQL, →SAL, →SQL, →won: "
              "the share of the stage before", markup=False, soft_wrap=True)
    for title, groups in (("total", {"all": result.total}), ("persona", result.by_persona),
                          ("source", result.by_source), ("campaign", result.by_campaign)):
        funnel = table(title, *WATERFALL, "→MQL", "→SAL", "→SQL", "→won", numbers=True)
        for key, waterfall in sorted(groups.items()):
            rates = list(waterfall.conversions().values())
            funnel.add_row(key, *(str(getattr(waterfall, s)) for s in WATERFALL),
                           *(f"{r:.0%}" if r is not None else "-" for r in rates))
        out.print(funnel)
    median = result.hours_to_answer_median
    out.print(f"handovers {result.handovers}, fast lane {result.fast_lane}, answered "
              f"{result.answered}" + (f" (median {median:.1f} h, p90 "
                                      f"{result.hours_to_answer_p90:.1f} h)" if median else "")
              + f", SLA breaches {result.breaches}; rejections: "
              + (", ".join(f"{k} {v}" for k, v in sorted(result.rejection_reasons.items()))
                 or "none")
              + f"; recycled {result.recycled}, of them MQL again {result.recycled_to_mql}",
              markup=False, soft_wrap=True)
    ranking = table("source (best first)", "leads", "→ SAL", "→ won", numbers=True)
    for row in result.source_ranking:
        ranking.add_row(row["source"], str(row["leads"]), f"{row['sal_rate']:.0%}",
                        f"{row['won_rate']:.0%}")
    out.print(ranking)
    if result.stages:
        stages = table("stage", "reached", "of previous", "days (median)", "days (p90)",
                       "stays", numbers=True)
        for flow in result.stages:
            stages.add_row(flow.stage, str(flow.reached),
                           f"{flow.conversion:.0%}" if flow.conversion is not None else "",
                           f"{flow.days_median:.1f}" if flow.days_median is not None else "-",
                           f"{flow.days_p90:.1f}" if flow.days_p90 is not None else "-",
                           str(flow.stays))
        out.print(stages)

    def rate(value: float | None) -> str:
        return f"{value:.1%}" if value is not None else "-"

    content = table("content", "sends", "clicks", "downloads", "advances", "unsubscribed",
                    "bounced", numbers=True)
    for content_id, counts in result.content.items():
        content.add_row(content_id, str(counts["sends"]), str(counts["clicks"]),
                        str(counts["downloads"]), str(counts["stage_advances"]),
                        rate(counts["unsubscribe_rate"]), rate(counts["bounce_rate"]))
    out.print(content)
    if result.journeys:
        journeys = table("journey", "sends", "deferred", "unsubscribed", "bounced",
                         numbers=True)
        for journey_id, row in result.journeys.items():
            journeys.add_row(journey_id, str(row["sends"]), str(row["deferred"]),
                             rate(row.get("unsubscribe_rate")), rate(row.get("bounce_rate")))
        out.print(journeys)
    for kind in ("deferred", "suppressed"):
        found = result.policy.get(kind, {})
        out.print(f"{kind} by policy: " + (", ".join(f"{k} {v}" for k, v in found.items())
                                            or "none"), markup=False, soft_wrap=True)
    quality = result.data_quality
    out.print("data quality of confirmed leads: " + (", ".join(
        f"{k.replace('_', ' ')} {v}" for k, v in quality.items()) or "no leads"),
        markup=False, soft_wrap=True)
    print_ab_tests(tests)


def print_ab_tests(tests: list[AbTestResult]) -> None:
    """Each A/B test: its variants' counts and rates, P(best), and the verdict."""
    for test in tests:
        arms = table(f"A/B test {test.journey} · {test.step}", "sent", "opened", "clicked",
                     "next stage", f"{test.metric} rate", "P(best)", numbers=True)
        for arm in test.variants:
            rate = arm.rate(test.metric)
            arms.add_row(arm.variant, str(arm.delivered), str(arm.opened), str(arm.clicked),
                         str(arm.next_stage), f"{rate:.1%}" if rate is not None else "-",
                         f"{arm.best:.0%}" if arm.best is not None else "-")
        out.print(arms)
        out.print(f"{test.verdict} (Bayesian, uniform prior)", markup=False, soft_wrap=True)


def _shares(texts: list[str] | None, option: str) -> dict[str, float] | None:
    """``name=share`` options (repeatable) into a mix; RipenError names the bad one."""
    if not texts:
        return None
    mix: dict[str, float] = {}
    for text in texts:
        name, _, share = text.rpartition("=")
        try:
            value = float(share.rstrip("%")) / (100 if share.endswith("%") else 1)
        except ValueError:
            raise RipenError(f'{option} "{text}" is not NAME=SHARE, e.g. {option} '
                             "eager=0.3") from None
        mix[name.strip()] = value
    return mix


@app.command()
def simulate(
    root: RootOption = None,
    leads: Annotated[int, typer.Option(help="Synthetic leads in the cohort")] = 200,
    days: Annotated[int, typer.Option(help="Virtual days to run")] = 90,
    seed: Annotated[int, typer.Option(help="Same seed, same result")] = 1,
    persona: Annotated[list[str] | None, typer.Option(
        help="Persona mix ID=SHARE, repeatable [default: every persona with a nurture "
             "journey, equally]", show_default=False)] = None,
    behaviour: Annotated[list[str] | None, typer.Option(
        help="Behaviour mix NAME=SHARE of eager, slow, never, fast_lane "
             "[default: eager=0.2 slow=0.4 never=0.3 fast_lane=0.1]",
        show_default=False)] = None,
    arrival_days: Annotated[int, typer.Option(
        help="Sign-ups spread over this many first days")] = 14,
    fit: Annotated[float, typer.Option(
        help="Share of leads whose company fits their persona (industry, size)")] = 0.7,
    tick_minutes: Annotated[int, typer.Option(
        help="Virtual minutes between scheduler ticks (at the least)")] = 60,
    start: Annotated[str, typer.Option(help="First virtual day, YYYY-MM-DD (a Monday by "
                                       "default)")] = "2026-01-05",
    appeal: Annotated[list[str] | None, typer.Option(
        help='For A/B tests: "SUBJECT TEXT=FACTOR", repeatable: a mail whose subject contains '
             "the text is clicked FACTOR times as often (2 = twice, 0.5 = half)",
        show_default=False)] = None,
    database: Annotated[str | None, typer.Option(
        help="Keep the simulated data in this EMPTY database (URL), e.g. to run `ripen "
             "report` on it [default: a temporary SQLite file, removed]",
        show_default=False)] = None,
    as_json: JsonOption = False,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Also write an HTML report with charts to this file",
        show_default=False)] = None,
) -> None:
    """Try the journeys before they go live: synthetic leads (persona mix, behaviour
    profiles) through the real engine on a virtual clock. Prints per persona the MQL rate,
    days to MQL, mails per lead, sends deferred by policy and leads left by the slowest
    case, and the path coverage of every step and branch. Nothing is sent: mail is
    captured, webhooks stay unsent; your database is not touched."""
    from datetime import timedelta

    from rich.progress import BarColumn, Progress, TextColumn

    from engine.bootstrap import bootstrap
    from engine.clock import ManualClock
    from engine.report import day
    from engine.simulate import Spec
    from engine.simulate import simulate as run_simulation

    first = day(start, "--start").replace(hour=8)
    spec = Spec(leads=leads, days=days, seed=seed, personas=_shares(persona, "--persona"),
                behaviours=_shares(behaviour, "--behaviour") or Spec().behaviours,
                arrival_days=arrival_days, fit=fit, tick=timedelta(minutes=tick_minutes),
                start=first, appeal=_shares(appeal, "--appeal") or {})
    with tempfile.TemporaryDirectory(prefix="ripen-simulate-") as scratch:
        url = database or f"sqlite:///{Path(scratch, 'simulation.db').as_posix()}"
        clock = ManualClock(first)
        ripen_app = bootstrap(load_cli_settings(root).model_copy(update={"database_url": url}),
                              clock=clock)
        console = Console(stderr=True) if as_json else out
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total} days"), console=console,
                          transient=as_json) as progress:
                task = progress.add_task(f"simulating {leads} leads", total=days)
                result = run_simulation(ripen_app, clock, spec,
                                        progress=lambda n: progress.advance(task, n))
            generated = ripen_app.wall()
        finally:
            ripen_app.dispose()
    if html is not None:
        from ripen import html_report

        assert result.report is not None
        html_report.write(html, html_report.render(
            result.report, title=f"ripen simulation (seed {seed})", generated=generated,
            simulation=result.as_json()))
    if as_json:
        print_json(result.as_json())
        return
    for title, groups in (("persona", result.personas), ("behaviour", result.by_behaviour)):
        cases = table(title, "leads", "MQL", "rate", "d→MQL", "p90", "mails", "defer", "slow",
                      "unsub", numbers=True)
        for name, row in groups.items():
            cases.add_row(name, str(row["leads"]), str(row["mql"]),
                          f"{row['mql_rate']:.0%}",
                          *(f"{row[k]:.1f}" if row[k] is not None else "-"
                            for k in ("days_to_mql_median", "days_to_mql_p90")),
                          f"{row['mails_per_lead']:.1f}", str(row["deferred"]),
                          str(row["slowest_case"]), str(row["unsubscribed"]))
        (out if out.is_terminal else Console(highlight=False, width=110)).print(cases)
    out.print("mails: " + ", ".join(f"{k} {v}" for k, v in result.mails.items())
              + "; deferred by policy: " + (", ".join(f"{k} {v}" for k, v in
                                                      result.deferred.items()) or "none"),
              markup=False, soft_wrap=True)
    for journey_id, steps in result.coverage.items():
        reached = sum(1 for step in steps if step.reached)
        out.print(f"{journey_id}: {reached} of {len(steps)} steps reached", markup=False)
    if result.unreached:
        out.print("never reached (steps, and branch outcomes never taken):", markup=False)
        for item in result.unreached:
            out.print(f"  {item}", markup=False, soft_wrap=True)
    if result.not_entered:
        out.print("journeys no simulated lead entered: " + ", ".join(result.not_entered),
                  markup=False, soft_wrap=True)
    print_ab_tests(result.ab_tests)
    if html is not None:
        out.print(f"HTML report written to {html}", markup=False, soft_wrap=True)
    if database is not None:
        out.print(f"the simulated data stays in {database}: `ripen report --since "
                  f"{start}` shows its funnel", markup=False, soft_wrap=True)
