"""The funnel report (and a simulation's) as one self-contained HTML file: inline SVG charts
and tables, no script, no external file — a manager opens it without a server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from engine.report import WATERFALL, FunnelReport

_env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                   autoescape=select_autoescape(default=True), undefined=StrictUndefined)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    width: float  # share of the widest bar, 0 … 1
    marker: float | None = None  # a second value on the same scale (p90), 0 … 1


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    bars: list[Bar]
    note: str = ""

    @property
    def height(self) -> int:
        return 28 * len(self.bars) + 10


def _bars(rows: list[tuple[str, float, str]], markers: list[float | None] | None = None
          ) -> list[Bar]:
    top = max([value for _, value, _ in rows] + [m for m in markers or [] if m] + [0.0])
    scale = top or 1.0
    marks = markers or [None] * len(rows)
    return [Bar(label, value, text, value / scale, mark / scale if mark is not None else None)
            for (label, value, text), mark in zip(rows, marks, strict=True)]


def _pct(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "–"


def charts(report: FunnelReport) -> list[Chart]:
    """The funnel, the advanced funnel with its velocity, and the sources."""
    total = report.total
    conversions = [None, *total.conversions().values()]
    funnel = Chart("funnel", "Demand waterfall (leads created in the period)", _bars(
        [(stage.upper() if stage in ("mql", "sal", "sql") else stage.capitalize(),
          getattr(total, stage),
          f"{getattr(total, stage):,}" + (f" ({_pct(rate)} of previous)" if rate is not None
                                          else ""))
         for stage, rate in zip(WATERFALL, conversions, strict=True)]))
    reached = Chart("stages", "Advanced funnel: leads that reached each stage", _bars(
        [(flow.stage, flow.reached, f"{flow.reached:,}" + (
            f" ({_pct(flow.conversion)})" if flow.conversion is not None else ""))
         for flow in report.stages]))
    timed = [flow for flow in report.stages if flow.days_median is not None]
    velocity = Chart("velocity", "Velocity: median days in each stage (line: p90)", _bars(
        [(flow.stage, flow.days_median or 0.0,
          f"{flow.days_median:.1f} d · p90 {flow.days_p90:.1f} d · {flow.stays} stays")
         for flow in timed], [flow.days_p90 for flow in timed]),
        note="" if timed else "no finished stays in the period")
    sources = Chart("sources", "Lead sources, best first: leads (and → SAL, → won)", _bars(
        [(row["source"], row["leads"], f"{row['leads']:,} (SAL {_pct(row['sal_rate'])}, won "
          f"{_pct(row['won_rate'])})") for row in report.source_ranking]))
    return [funnel, reached, velocity, sources]


def render(report: FunnelReport, *, title: str, generated: datetime,
           simulation: dict[str, Any] | None = None,
           ab_tests: list[dict[str, Any]] | None = None, note: str | None = None) -> str:
    """The whole page. ``simulation``: a simulation's results (``ripen simulate --html``);
    ``ab_tests``: the A/B tests' results (a simulation's are in it); ``note``: a line under
    the period (how the numbers were made)."""
    tests = ab_tests if ab_tests is not None else (simulation or {}).get("ab_tests", [])
    return _env.get_template("report.html.j2").render(
        title=title, generated=generated, report=report, data=report.as_json(),
        charts=charts(report), pct=_pct, waterfall=WATERFALL, simulation=simulation,
        ab_tests=tests, note=note)


def write(path: Path, html: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
