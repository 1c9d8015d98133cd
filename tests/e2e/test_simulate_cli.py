"""`ripen simulate` on the real engine, and `ripen report` on the database it populated:
the report's numbers against counts recomputed here, the HTML report in Chromium, the same
result on two runs and on PostgreSQL, and a journey with a branch no lead can take."""

from __future__ import annotations

import json
import sqlite3
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from engine.bootstrap import bootstrap
from engine.clock import ManualClock
from engine.settings import load_settings
from engine.simulate import DEFAULT_START, Spec, simulate
from tests.e2e.test_cli import ripen
from tests.e2e.test_signup_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.factories import REPO, example_tree

LEADS, DAYS = "36", "35"


@dataclass
class Run:
    path: Path
    result: dict[str, Any]
    html: Path


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("simulation")
    path, html = folder / "sim.db", folder / "simulation.html"
    done = ripen("simulate", "--leads", LEADS, "--days", DAYS, "--seed", "1", "--database",
                 f"sqlite:///{path}", "--json", "--html", str(html), timeout=600)
    assert done.returncode == 0, done.stderr
    return Run(path, json.loads(done.stdout), html)


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_report_json_matches_counts_recomputed_from_the_simulated_database(
        simulated: Run) -> None:
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{simulated.path}"}
    done = ripen("report", "--since", "2026-01-05", "--until", "2026-03-01", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    db = simulated.path

    leads = _rows(db, "SELECT count(*) FROM lead")[0][0]
    handed = dict(_rows(db, "SELECT l.persona_id, count(DISTINCT h.lead_id) FROM handover h "
                            "JOIN lead l ON l.id = h.lead_id GROUP BY l.persona_id"))
    assert report["total"]["inquiries"] == leads == int(LEADS)
    assert report["total"]["mql"] == sum(handed.values()) > 0
    assert {p: w["mql"] for p, w in report["by_persona"].items() if w["mql"]} == handed
    # the simulation counted its MQLs from the same leads, through its own code
    assert {p: row["mql"] for p, row in simulated.result["personas"].items()
            if row["mql"]} == handed
    assert report["fast_lane"] == _rows(
        db, "SELECT count(*) FROM handover WHERE reason = 'fast_lane'")[0][0]

    sends = dict(_rows(db, "SELECT content_id, count(*) FROM sent_content GROUP BY 1"))
    clicks = dict(_rows(db, "SELECT content_id, count(*) FROM event WHERE type = 'click' "
                            "AND NOT is_scanner GROUP BY 1"))
    assert {c: row["sends"] for c, row in report["content"].items() if row["sends"]} == sends
    assert {c: row["clicks"] for c, row in report["content"].items() if row["clicks"]} == clicks
    # every journey mail the capture transport received is one content send
    assert sum(sends.values()) == simulated.result["mails"]["journey"]
    withdrawn = _rows(db, "SELECT count(*) FROM consent_record WHERE action = 'withdrawn' "
                          "AND purpose = 'email_marketing'")[0][0]
    assert sum(row["unsubscribes"] for row in report["content"].values()) == withdrawn
    deferred = dict(_rows(db, "SELECT reason, count(*) FROM send_deferral GROUP BY 1"))
    assert report["policy"]["deferred"] == deferred == simulated.result["deferred"]
    assert sum(deferred.values()) > 0  # weekends and quiet hours fall into 35 days

    # the advanced funnel and its velocity, recomputed from the stage history
    entries = _rows(db, "SELECT lead_id, journey_id, stage, entered_at FROM stage_entry "
                        "ORDER BY lead_id, entered_at, id")
    first_handover = {lead: _when(at) for lead, at in _rows(
        db, "SELECT lead_id, min(created_at) FROM handover GROUP BY lead_id")}
    stages = {flow["stage"]: flow for flow in report["stages"]}
    assert stages["INF"]["reached"] == len({lead for lead, *_ in entries}) == leads
    inf_days = []
    for position, (lead, journey, stage, at) in enumerate(entries):
        if stage != "INF":
            continue
        later = [_when(e[3]) for e in entries[position + 1:] if e[0] == lead and e[1] == journey]
        ends = later[:1] + [t for t in [first_handover.get(lead)] if t and t >= _when(at)]
        if ends:
            inf_days.append((min(ends) - _when(at)).total_seconds() / 86400)
    assert stages["INF"]["stays"] == len(inf_days) > 0
    assert stages["INF"]["days_median"] == round(statistics.median(inf_days), 2)


def test_the_html_report_renders_its_charts_in_chromium(simulated: Run) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(simulated.html.as_uri())
            charts = {}
            for chart in ("funnel", "stages", "velocity", "sources"):
                bars = page.locator(f"#chart-{chart} svg rect.bar")
                widths = [box["width"] for box in (bars.nth(i).bounding_box()
                                                   for i in range(bars.count())) if box]
                charts[chart] = widths
            page.screenshot(path=str(ARTIFACTS / "report-simulation.png"), full_page=True)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert all(widths and max(widths) > 50 for widths in charts.values()), charts
    assert len(charts["funnel"]) == 5  # inquiries, MQL, SAL, SQL, won
    assert "Path coverage" in text
    assert "kurt-konstrukteur" in text
    assert (ARTIFACTS / "report-simulation.png").stat().st_size > 10_000


def _run(url: str, seed: int, root: Path = REPO, **spec: Any) -> dict[str, Any]:
    clock = ManualClock(DEFAULT_START)
    app = bootstrap(load_settings(home=root, database_url=url), clock=clock)
    try:
        return simulate(app, clock, Spec(leads=int(LEADS), days=int(DAYS), seed=seed,
                                         **spec)).as_json()
    finally:
        app.dispose()


def test_the_same_seed_gives_the_same_result_on_each_database(
        simulated: Run, database_url: str, tmp_path: Path) -> None:
    again = _run(database_url, seed=1)
    assert again == simulated.result
    # and the seed matters: another one is a different cohort
    other = _run(f"sqlite:///{tmp_path / 'other.db'}", seed=2)
    assert other["by_behaviour"] != simulated.result["by_behaviour"]


def test_a_branch_no_lead_can_take_is_reported(simulated: Run, tmp_path: Path) -> None:
    root = tmp_path / "ripen"
    example_tree(root)
    journey = root / "config" / "journeys" / "monika-marketing.yaml"
    text = journey.read_text()
    assert text.count("within: 5d") == 1
    journey.write_text(text.replace("within: 5d", "within: 400d"))  # nobody waits that long
    result = _run(f"sqlite:///{tmp_path / 'sim.db'}", seed=1, root=root,
                  personas={"monika-marketing": 1.0})
    unreached = set(result["unreached"])
    assert "monika-marketing:inf-engaged → inf-second (otherwise)" in unreached
    assert "monika-marketing:inf-second" in unreached
    assert "monika-marketing:inf-engaged" not in unreached  # a branch names its ways out
    assert "monika-marketing:inf-second" not in simulated.result["unreached"]
    assert not any(u.startswith("monika-marketing:inf-engaged → inf-second")
                   for u in simulated.result["unreached"])
    steps = {s["step"]: s for s in result["coverage"]["monika-marketing"]}
    assert steps["inf-engaged"]["outcomes"].get("branch_no", 0) == 0
    assert list(result["personas"]) == ["monika-marketing"]


def test_simulate_refuses_a_database_with_leads(simulated: Run) -> None:
    done = ripen("simulate", "--leads", "2", "--days", "1", "--database",
                 f"sqlite:///{simulated.path}")
    assert done.returncode == 1
    assert "needs an empty database" in done.stderr + done.stdout
    bad = ripen("simulate", "--behaviour", "lazy=1")
    assert bad.returncode == 1
    assert "unknown behaviour lazy" in bad.stderr + bad.stdout
