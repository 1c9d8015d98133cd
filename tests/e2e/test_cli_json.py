"""Every command that lists or shows something answers ``--json`` with one JSON document on
stdout (issue 21), tables fold instead of cutting ids, and the exit codes mean what the
README says: 0 done, 1 your input, 2 a usage mistake, 3 a bug of ripen's."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.bootstrap import bootstrap
from engine.settings import load_settings
from engine.store import database
from engine.store.tables import Enrollment, JourneyVersion, WebhookDelivery
from tests.e2e.test_cli import ripen
from tests.factories import NOW, REPO, config_tree, lead

EMAIL = "json-lead@example.com"
CAMPAIGN = "fruehjahrsmesse-2027-nord-halle-7"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A database with one imported lead (its confirmation mail in the Maildir), a webhook
    delivery waiting for a retry and a lead in flight on an old journey version."""
    folder = tmp_path_factory.mktemp("json")
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{folder / 'ripen.db'}",
           "RIPEN_MAIL_URL": f"maildir:{folder / 'outbox'}"}
    csv = folder / "leads.csv"
    csv.write_text(f"email;first_name;campaign\n{EMAIL};Jana;{CAMPAIGN}\nnot-an-address;X;\n",
                   encoding="utf-8")
    imported = ripen("import", str(csv), "--source", "event", "--json", env=env)
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert (summary["imported"], summary["confirmation_mails"]) == (1, {"sent": 1, "waiting": 0})
    assert summary["refused"] == [{"line": 3, "reason": "An email address must have an @-sign."}]
    app = bootstrap(load_settings(database_url=env["RIPEN_DATABASE_URL"]))
    try:
        with app.uow() as uow:
            person = lead(email="in-flight@example.com")
            uow.add(person, JourneyVersion(journey_id="monika-marketing", version="0ld0ld0ld0ld",
                                           definition={}, live_since=NOW))
            uow.flush()
            uow.add(Enrollment(lead_id=person.id or 0, journey_id="monika-marketing",
                               journey_version="0ld0ld0ld0ld", stage="INF",
                               step_id="inf-engaged", due_at=NOW, stage_entered_at=NOW,
                               started_at=NOW),
                    WebhookDelivery(webhook_id="msg_2zJSONtestdelivery0001",
                                    endpoint_id="crm", event_type="lead.handover",
                                    payload="{}", status="retry", attempts=2,
                                    next_attempt_at=NOW, last_status_code=503,
                                    created_at=NOW))
            uow.commit()
    finally:
        app.dispose()
    return env


def _json(args: list[str], env: dict[str, str] | None = None, code: int = 0) -> Any:
    result = ripen(*args, env=env)
    assert result.returncode == code, result.stdout + result.stderr
    return json.loads(result.stdout)  # nothing but the document on stdout


def _first(rows: list[dict[str, Any]], **match: object) -> dict[str, Any]:
    return next(row for row in rows if all(row.get(k) == v for k, v in match.items()))


def _outbox(rows: list[dict[str, Any]]) -> None:
    assert _first(rows, category="doi", status="sent")["lead_id"] is not None
    assert not any("to_address" in row or "body_html" in row for row in rows)  # no personal data


def _handovers(rows: list[dict[str, Any]]) -> None:
    row = _first(rows, webhook_id="msg_2zJSONtestdelivery0001")
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("retry", 2, 503)


def _routing(data: dict[str, Any]) -> None:
    assert _first(data["reps"], rep="alpen-partner")["channel"] == "partner"
    assert {rep["handovers"] for rep in data["reps"]} == {0}


def _explain(data: dict[str, Any]) -> None:
    assert (data["email"], data["is_mql"], data["sales_stage"]) == (EMAIL, False, None)
    assert data["mql_rules"]
    assert not any(rule["holds"] for rule in data["mql_rules"])


def _lead_show(data: dict[str, Any]) -> None:
    assert (data["email"], data["name"], data["status"], data["is_mql"]) == (
        EMAIL, "Jana", "pending", False)
    assert data["journeys"] == []  # not confirmed yet: in no journey
    [doi] = data["mails"]
    assert (doi["category"], doi["status"], doi["clicked"]) == ("doi", "sent", False)
    assert [m["what"] for m in data["moments"]][:2] == ["email_marketing requested",
                                                        "email_marketing doi_sent"]


def _proof(data: dict[str, Any]) -> None:
    assert {"requested", "doi_sent"} <= {entry["action"] for entry in data["ledger"]}
    assert data["texts"]
    for digest, text in data["texts"].items():
        assert hashlib.sha256(text.encode()).hexdigest() == digest


def _plan(data: dict[str, Any]) -> None:
    assert data["customers"] == 50  # 1,000,000 / 20,000
    # the rule of ten: 500 targets → 50 leads → 5 customers
    assert [(row["stage"], row["needed"]) for row in data["stages"]] == [
        ("target", 5000), ("lead", 500), ("won", 50)]
    assert data["pipeline"] is None  # --no-history: the database is not read


def _plan_change(rows: list[dict[str, Any]]) -> None:
    assert _first(rows, journey="monika-marketing", from_version="0ld0ld0ld0ld")["leads"] == 1


def _validate(data: dict[str, Any]) -> None:
    assert data["ok"] is True
    assert len(data["journeys"]) == 6
    assert "monika-marketing" in data["personas"]


def _db_current(data: dict[str, Any]) -> None:
    head = database.head_revision()
    assert data == {"current": head, "head": head, "up_to_date": True}


def _journeys(rows: list[dict[str, Any]]) -> None:
    row = _first(rows, journey="monika-marketing")
    assert (row["paused_since"], row["quarantined"]) == (None, 0)


def _quarantined(rows: list[dict[str, Any]]) -> None:
    assert rows == []


def _report(data: dict[str, Any]) -> None:
    assert CAMPAIGN in json.dumps(data)


def _audit(data: dict[str, Any]) -> None:
    assert data["gaps"] == []
    assert data["cells"]


CHECKS: dict[str, tuple[list[str], Callable[[Any], None]]] = {
    "outbox list": (["outbox", "list", "--json"], _outbox),
    "handovers list": (["handovers", "list", "--status", "retry", "--json"], _handovers),
    "routing report": (["routing", "report", "--json"], _routing),
    "explain": (["explain", EMAIL, "--json"], _explain),
    "consent proof": (["consent", "proof", EMAIL, "--json"], _proof),
    "plan": (["plan", "--revenue", "1000000", "--deal-size", "20000", "--no-history",
              "--json"], _plan),
    "plan-change": (["plan-change", "--json"], _plan_change),
    "validate": (["validate", "--json"], _validate),
    "db current": (["db", "current", "--json"], _db_current),
    "journeys list": (["journeys", "list", "--json"], _journeys),
    "leads quarantined": (["leads", "quarantined", "--json"], _quarantined),
    "report": (["report", "--since", "2020-01-01", "--json"], _report),
    "audit content": (["audit", "content", "--json"], _audit),
    "lead show": (["lead", "show", EMAIL.upper(), "--json"], _lead_show),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_json_output_parses_and_holds_the_facts(shop: dict[str, str], name: str) -> None:
    """Each command's --json is one parseable document with the facts the text shows."""
    args, check = CHECKS[name]
    check(_json(args, shop))


def test_lead_show_prints_the_timeline_and_refuses_an_unknown_lead(
        shop: dict[str, str]) -> None:
    shown = ripen("leads", "show", EMAIL, env=shop)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{EMAIL} (Jana)\n")
    assert "consent: pending" in shown.stdout
    assert "email_marketing requested" in shown.stdout
    unknown = ripen("lead", "show", "nobody@example.com", env=shop)
    assert (unknown.returncode, unknown.stderr) == (
        1, "error: no lead with the address nobody@example.com\n")


def test_bounces_ingest_json(shop: dict[str, str], tmp_path: Path) -> None:
    """An auto-reply is listed as not a report, in JSON too."""
    (tmp_path / "reply.eml").write_text("From: a@example.com\nSubject: Urlaub\n\nbin weg\n",
                                        encoding="utf-8")
    data = _json(["bounces", "ingest", str(tmp_path), "--json"], shop)
    assert data["files"] == 1
    assert [row["file"] for row in data["not_a_report"]] == ["reply.eml"]


def test_validate_json_lists_the_problems_and_exits_1(tmp_path: Path) -> None:
    """Problems as objects with file, line, column, message and hint; exit 1."""
    root = config_tree(tmp_path / "cfg", {"config/journeys/anna.yaml":
                                          [("wait: 3d", "wait: 3 days")]})
    data = _json(["validate", "--root", str(root), "--json"], code=1)
    assert data["ok"] is False
    assert data["problems"] == [{"file": "config/journeys/anna.yaml", "line": 10, "column": 15,
                                 "message": 'stages.INF.steps[1].wait: "3 days" is not a '
                                            "duration",
                                 "hint": "write durations like 3d, 12h, 90m or 2w"}]


def _folded(text: str) -> re.Pattern[str]:
    """``text`` as a table cell shows it: whole, or folded onto following lines (the rest
    of a line may hold other columns); never shortened with "…"."""
    gap = r"(?:[^\n]*\n[ ]*)?"
    return re.compile(gap.join(re.escape(char) for char in text))


def test_tables_fold_long_ids_at_80_columns(shop: dict[str, str]) -> None:
    """At 80 columns (a pipe, a small terminal) the report's eleven-column campaign table
    keeps the whole campaign id, and the consent proof prints the whole text digest."""
    narrow = shop | {"COLUMNS": "80"}
    result = ripen("report", "--since", "2020-01-01", env=narrow)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert _folded(CAMPAIGN).search(result.stdout), result.stdout
    proof = ripen("consent", "proof", EMAIL, env=narrow)
    assert re.search(r"text [0-9a-f]{64}: ", proof.stdout), proof.stdout


def test_a_bug_exits_3_with_the_traceback_in_the_error_log(tmp_path: Path) -> None:
    """An unexpected exception is "a bug": one line on stderr naming the log file (exit 3),
    the traceback in that file, not on the operator's screen."""
    script = ("import sys\n"
              "import ripen.cli.configuration as configuration\n"
              "def broken(paths):\n"
              "    raise ZeroDivisionError('deliberately broken for the test')\n"
              "configuration.load_and_compile = broken\n"
              "from ripen.cli import main\n"
              "sys.argv = ['ripen', 'validate']\n"
              "main()\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RIPEN_")}
    environment["RIPEN_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    match = re.fullmatch(r"ripen failed unexpectedly \(a bug\); details are in (\S+)\n",
                         result.stderr)
    assert match, result.stderr
    assert Path(match[1]) == tmp_path / "var" / "log" / "ripen-error.log"
    assert "ZeroDivisionError: deliberately broken" in Path(match[1]).read_text()


def test_shell_completion_completes_commands_and_options() -> None:
    """`ripen --show-completion bash` prints a script a real bash sources; it completes
    command names and options."""
    shown = ripen("--show-completion", "bash")
    assert shown.returncode == 0, shown.stderr
    probe = ('eval "$(cat)"\n'
             "COMP_WORDS=(ripen outb); COMP_CWORD=1; _ripen_completion ripen; "
             'echo "${COMPREPLY[*]}"\n'
             "COMP_WORDS=(ripen outbox list --st); COMP_CWORD=3; _ripen_completion ripen; "
             'echo "${COMPREPLY[*]}"\n')
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the script calls `ripen`
    result = subprocess.run(["bash", "-c", probe], input=shown.stdout, capture_output=True,
                            text=True, timeout=60, env=os.environ | {"PATH": path},
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["outbox", "--status"]
