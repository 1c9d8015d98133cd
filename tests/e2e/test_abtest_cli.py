"""An A/B test tried before it goes live: `ripen simulate` with two subjects of known
different appeal names the right winner and its probability, and `ripen report` on the
simulated data says the same."""

from __future__ import annotations

import json
from pathlib import Path

from engine.bootstrap import bootstrap
from engine.clock import ManualClock
from engine.settings import load_settings
from engine.simulate import DEFAULT_START, Spec, simulate
from tests.e2e.test_cli import ripen
from tests.integration.test_abtest import _tree


def test_simulate_and_report_name_the_subject_that_appeals_more(tmp_path: Path) -> None:
    root = _tree(tmp_path)  # monika-marketing's first mail: a (control) and b (own subject)
    database = f"sqlite:///{tmp_path / 'simulated.db'}"
    simulated = ripen("simulate", "--root", str(root), "--leads", "240", "--days", "21",
                      "--persona", "monika-marketing=1", "--behaviour", "slow=1",
                      "--appeal", "in 10 Minuten –=2", "--database", database, "--json",
                      timeout=900)
    assert simulated.returncode == 0, simulated.stderr
    [test] = json.loads(simulated.stdout)["ab_tests"]
    arms = {arm["variant"]: arm for arm in test["variants"]}
    assert (test["journey"], test["step"], test["metric"]) == ("monika-marketing",
                                                               "inf-intro", "click")
    assert arms["a"]["delivered"] + arms["b"]["delivered"] >= 200
    assert arms["b"]["rate"] > arms["a"]["rate"] * 1.5  # slow leads click 40 %; b twice
    assert arms["b"]["best"] > 0.99
    assert test["verdict"].startswith("b beats a on clicks, > 99 % probability")
    assert test["winner"] == "b"

    env = {"RIPEN_DATABASE_URL": database, "RIPEN_HOME": str(root)}
    shown = ripen("report", "--since", "2026-01-01", "--until", "2026-03-01", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "b beats a on clicks, > 99 % probability; the winner rule sends b to everyone now " \
        "(Bayesian, uniform prior)" in shown.stdout
    data = json.loads(ripen("report", "--since", "2026-01-01", "--json", env=env).stdout)
    assert [(t["journey"], t["step"], t["winner"]) for t in data["ab_tests"]] == [
        ("monika-marketing", "inf-intro", "b")]
    assert data["ab_tests"][0]["variants"] == test["variants"]  # the same counts


def test_the_same_seed_splits_an_ab_test_the_same_way(tmp_path: Path) -> None:
    """The variant is keyed by the lead's public id, which a simulation draws from its seed:
    two runs with one seed give the same arms, counts and verdict (random ids did not)."""
    root = _tree(tmp_path)
    runs = []
    for name in ("first", "second"):
        clock = ManualClock(DEFAULT_START)
        app = bootstrap(load_settings(home=root, database_url=f"sqlite:///{tmp_path / name}.db"),
                        clock=clock)
        try:
            runs.append(simulate(app, clock, Spec(leads=60, days=10, seed=7,
                                                  personas={"monika-marketing": 1.0}))
                        .as_json()["ab_tests"])
        finally:
            app.dispose()
    [first] = runs[0]
    assert all(arm["delivered"] > 0 for arm in first["variants"])
    assert runs[1] == runs[0]
