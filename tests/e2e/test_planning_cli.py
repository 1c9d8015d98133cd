"""`ripen audit content` and `ripen plan`: content gaps failing CI, and funnel planning."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import ripen
from tests.factories import example_tree


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "ripen"
    example_tree(root)
    return root


def test_the_example_configuration_has_no_gaps() -> None:
    result = ripen("audit", "content", "--strict", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["gaps"] == []
    cell = next(c for c in report["cells"]
                if (c["persona"], c["stage"]) == ("monika-marketing", "INF"))
    # Two INF articles of Monika's own and one shared; her journey sends two and waits 10d.
    assert (len(cell["items"]), cell["sends"], cell["wait_days"], cell["runway_days"]) == (
        3, 2, 10.0, 15.0)
    assert cell["fast_lane"] == []
    assert [c["stage"] for c in report["cells"][:7]] == ["INF", "BEF", "EVA", "BEW", "AFS",
                                                         "WIK", "CUS"]


def test_a_persona_without_content_fails_strict_and_stale_items_are_listed(
        tmp_path: Path) -> None:
    root = _copy(tmp_path)
    persona = (root / "config" / "personas" / "monika-marketing.yaml").read_text()
    (root / "config" / "personas" / "ingrid-einkauf.yaml").write_text(
        persona.replace("id: monika-marketing", "id: ingrid-einkauf")
               .replace("name: Monika Marketing", "name: Ingrid Einkauf"))
    content = root / "content" / "monika-marketing.yaml"
    content.write_text(content.read_text().replace("published: 2026-03-02",
                                                   "published: 2019-05-01", 1))
    loose = ripen("audit", "content", "--root", str(root))
    assert loose.returncode == 0, loose.stderr
    # The shared items (`personas: all`) reach a new persona at once: the newsletter (INF),
    # customer voices (EVA), the supplier comparison (BEW) and the customer stages; BEF has
    # nothing shared, so it is her one gap.
    assert "gap: no content for ingrid-einkauf at BEF" in loose.stdout
    assert "(2019-05-01)" in loose.stdout
    strict = ripen("audit", "content", "--strict", "--root", str(root))
    assert strict.returncode == 1
    gaps = [line for line in strict.stdout.splitlines() if line.startswith("gap:")]
    assert gaps == ["gap: no content for ingrid-einkauf at BEF"]


def test_plan_reproduces_the_rule_of_ten_and_reads_rates(tmp_path: Path) -> None:
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}"}
    ten = ripen("plan", "--revenue", "250000", "--deal-size", "50000", env=env)
    assert ten.returncode == 0, ten.stderr
    assert "rates from rule of ten (500 → 50 → 5)" in ten.stdout
    rows = [line.split() for line in ten.stdout.splitlines()
            if line.strip().startswith(("target", "lead", "won"))]
    assert [row[:2] for row in rows] == [["target", "500"], ["lead", "50"], ["won", "5"]]
    assert "open pipeline: 0 MQL, 0 with sales" in ten.stdout
    bad = ripen("plan", "--revenue", "1", "--deal-size", "1", "--rate", "lead:mql=2",
                "--no-history", env=env)
    assert (bad.returncode, bad.stderr) == (
        1, 'error: rate "lead:mql=2": a conversion rate is above 0 and at most 1\n')


def test_report_runs_on_an_empty_database_and_checks_its_dates(tmp_path: Path) -> None:
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}"}
    empty = ripen("report", "--since", "2026-10-01", "--until", "2026-11-01", env=env)
    assert empty.returncode == 0, empty.stderr
    assert "2026-10-01 to 2026-10-31" in empty.stdout
    assert "handovers 0, fast lane 0, answered 0, SLA breaches 0" in empty.stdout
    as_json = ripen("report", "--json", "--html", str(tmp_path / "r.html"), env=env)
    assert json.loads(as_json.stdout)["total"]["inquiries"] == 0
    page = (tmp_path / "r.html").read_text()
    assert page.count('class="bar"') == 5  # the waterfall's five stages, all zero
    assert "no data in the period" in page  # the other charts say so instead of drawing
    bad = ripen("report", "--since", "1.10.2026", env=env)
    assert (bad.returncode, bad.stderr) == (
        1, 'error: --since "1.10.2026" is not a date like 2026-10-01\n')


def test_plan_takes_the_rates_agreed_in_sla_yaml(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    sla = root / "config" / "sla.yaml"
    sla.write_text(sla.read_text() + "planning:\n  rates: [lead:mql=20%, mql:sal=0.5, "
                                     "sal:won=0.25]\n")
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}", "RIPEN_HOME": str(root)}
    agreed = ripen("plan", "--revenue", "300000", "--deal-size", "50000", env=env)
    assert agreed.returncode == 0, agreed.stderr
    assert "rates from config/sla.yaml" in agreed.stdout
    # 6 customers ← 24 SAL (25 %) ← 48 MQL (50 %) ← 240 leads (20 %)
    rows = [line.split()[:2] for line in agreed.stdout.splitlines()
            if line.strip().startswith(("lead ", "mql ", "sal ", "won "))]
    assert rows == [["lead", "240"], ["mql", "48"], ["sal", "24"], ["won", "6"]]
    given = ripen("plan", "--revenue", "300000", "--deal-size", "50000", "--rate",
                  "lead:won=0.5", "--no-history", env=env)
    assert "rates from command line" in given.stdout  # the command line wins
    sla.write_text(sla.read_text().replace("mql:sal=0.5", "mql:sal=5"))
    broken = ripen("plan", "--revenue", "1", "--deal-size", "1", env=env)
    assert broken.returncode == 1
    assert "sla.yaml:" in broken.stderr
    assert 'rate "mql:sal=5": a conversion rate is above 0 and at most 1' in broken.stderr
