"""The ``ripen`` command as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from engine.config.schema import json_schemas, schema_file_name
from engine.store import database
from tests.factories import REPO, config_tree, example_tree

RIPEN = str(Path(sys.executable).with_name("ripen"))


def ripen(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RIPEN_")}
    environment.update(env or {})
    return subprocess.run([RIPEN, *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_validate_the_example_configuration() -> None:
    """`ripen validate` exits 0 with a summary of personas, content, journeys and steps."""
    result = ripen("validate")
    assert result.returncode == 0, result.stderr
    assert "OK: 3 personas, 31 content items, 6 journeys, 81 steps" in result.stdout
    assert "Monika Marketing" in result.stdout
    assert result.stderr == ""
    # valid, but worth a look: two personas a lead can fit equally well
    assert "\nnote: personas kurt-konstrukteur and peter-produktionsleiter overlap: " in \
        result.stdout


def test_personas_match_says_which_persona_and_why() -> None:
    shown = ripen("personas", "match", "Geschäftsführer, mechanical-engineering, 300, AT")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("read as: title Geschäftsführer; industry "
                                   "mechanical-engineering; company size 300; region AT\n")
    assert shown.stdout.rstrip().endswith(
        "persona: kurt-konstrukteur (tied with peter-produktionsleiter: the first id wins)")
    data = json.loads(ripen("personas", "match", "Leiter Konstruktion, 200, DE",
                            "--json").stdout)
    assert data["persona"] == "kurt-konstrukteur"
    assert data["fits"][0] == {"persona": "kurt-konstrukteur",
                               "matched": ["title", "company_size", "region"],
                               "points": 60, "grade": "B"}


def test_validate_reports_problems_plainly_and_exits_1(tmp_path: Path) -> None:
    """Each problem is one unwrapped `file:line:col: message` line plus a hint; no traceback."""
    root = config_tree(tmp_path / "cfg", {
        "config/journeys/anna.yaml": [("wait: 3d", "wait: 3 days")],
        "content/items.yaml": [("type: guide", "type: guid")],
    })
    result = ripen("validate", "--root", str(root))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        'config/journeys/anna.yaml:10:15: stages.INF.steps[1].wait: "3 days" is not a duration\n'
        "  hint: write durations like 3d, 12h, 90m or 2w\n"
        'content/items.yaml:10:11: items[1].type: "guid" is not one of: article, blog_post, '
        "case_study, checklist, demo, ebook, event, guide, infographic, newsletter, podcast, "
        "study, tool, video, webinar or whitepaper\n"
        "  hint: did you mean guide?\n"
        "2 problems found\n"
    )


def test_validate_a_folder_without_configuration(tmp_path: Path) -> None:
    """An empty folder gets one clear problem per missing folder, exit 1."""
    result = ripen("validate", "-C", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines()[:2] == ["config:1:1: the config folder is missing",
                                              "  hint: create config/ (see the README)"]
    assert "Traceback" not in result.stderr


def test_bad_settings_are_a_user_error() -> None:
    """A malformed RIPEN_* variable names the variable and exits 1."""
    result = ripen("validate", env={"RIPEN_TICK_SECONDS": "often"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid settings:\n  RIPEN_TICK_SECONDS:")


def _shipped_files() -> dict[str, list[Path]]:
    """Every shipped YAML file by its kind (and a check that none is left out)."""
    kinds = {
        "persona": sorted((REPO / "config" / "personas").glob("*.yaml")),
        "content": sorted((REPO / "content").glob("*.yaml")),
        "journey": sorted((REPO / "config" / "journeys").glob("*.yaml")),
        "scoring": [REPO / "config" / "scoring.yaml"],
        "sla": [REPO / "config" / "sla.yaml"],
        "policy": [REPO / "config" / "policy.yaml"],
        "consent": [REPO / "config" / "consent.yaml"],
        "mail": [REPO / "config" / "mail.yaml"],
        "retention": [REPO / "config" / "retention.yaml"],
    }
    shipped = {p for p in (REPO / "config").rglob("*.yaml")} | set(
        (REPO / "content").glob("*.yaml"))
    assert shipped == {f for files in kinds.values() for f in files}  # every file checked
    return kinds


SCHEMA_CHECK = REPO / "tests" / "schema_check"


def _ajv(schema: Path, *files: Path) -> dict[str, list[str]]:
    """ajv (draft 2020-12, every format) on files read by the `yaml` package — the parser
    of the YAML language server editors use; installed by `make test` (npm ci)."""
    assert (SCHEMA_CHECK / "node_modules" / "ajv").is_dir(), (
        "ajv is not installed: run `make test` (or npm ci --prefix tests/schema_check)")
    answer = subprocess.run(["node", str(SCHEMA_CHECK / "validate.mjs"), str(schema),
                             *map(str, files)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert answer.returncode == 0, answer.stderr
    return dict(json.loads(answer.stdout))


def test_ajv_accepts_every_shipped_file_and_refuses_a_broken_one(tmp_path: Path) -> None:
    """The schemas the files name in their first line (config/schemas/), checked by ajv as
    an editor's language server does: every shipped file is clean, and a wrong time of day
    or a misspelt key is caught (so the check can fail)."""
    for kind, files in _shipped_files().items():
        report = _ajv(REPO / "config" / "schemas" / schema_file_name(kind), *files)
        assert report == {str(f): [] for f in files}, report
    policy = (REPO / "config" / "policy.yaml").read_text(encoding="utf-8")
    assert '"19:00"' in policy
    broken = tmp_path / "policy.yaml"
    broken.write_text(policy.replace('"19:00"', '"7pm"'), encoding="utf-8")
    persona_file = sorted((REPO / "config" / "personas").glob("*.yaml"))[0]
    typo = tmp_path / "persona.yaml"
    typo.write_text(persona_file.read_text(encoding="utf-8").replace("\nname:", "\nnmae:", 1),
                    encoding="utf-8")
    assert "nmae:" in typo.read_text(encoding="utf-8")
    [problems] = _ajv(REPO / "config" / "schemas" / "policy.schema.json", broken).values()
    assert any(p.startswith("/quiet_hours/start must match pattern") for p in problems)
    [problems] = _ajv(REPO / "config" / "schemas" / "persona.schema.json", typo).values()
    assert "/ must NOT have additional properties" in problems


def test_schema_accepts_every_example_file(tmp_path: Path) -> None:
    """`ripen schema` writes schemas that accept every shipped YAML file as an editor checks
    it: the file read as YAML 1.2 (dates and times stay text) and every ``format`` checked
    (a ``format: time`` refused the correct "19:00" before)."""
    result = ripen("schema", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    yaml = YAML(typ="safe")
    for kind, files in _shipped_files().items():
        schema = json.loads((tmp_path / schema_file_name(kind)).read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        assert files
        for file in files:
            data = json.loads(json.dumps(yaml.load(file), default=str))
            jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator,
                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            assert "$schema=" in file.read_text(encoding="utf-8").splitlines()[0], file


def test_every_schema_default_matches_its_own_pattern() -> None:
    """A default an editor inserts must be valid where it goes (`retry_horizon` defaulted to
    the ISO "P5D" its own duration pattern refuses)."""
    wrong: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            default, pattern = node.get("default"), node.get("pattern")
            if isinstance(default, str) and isinstance(pattern, str) and \
                    not re.search(pattern, default):
                wrong.append(f"{where}: {default!r} !~ {pattern}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    schemas = json_schemas()
    for kind, schema in schemas.items():
        walk(schema, kind)
    assert wrong == []
    retention = schemas["retention"]["properties"]
    assert retention["click_links"]["default"] == "400d"


def test_schema_rejects_a_typo() -> None:
    """The schemas are strict like the models: an unknown key fails in the editor too."""
    schema = json_schemas()["persona"]
    with pytest.raises(jsonschema.ValidationError, match="nmae"):
        jsonschema.validate({"id": "x", "nmae": "X", "name": "X", "positions": ["a"],
                             "fit": {"regions": ["DE"]}}, schema)


def test_committed_schemas_are_current() -> None:
    """config/schemas/ matches the models (run `ripen schema` after changing a model)."""
    for kind, schema in json_schemas().items():
        committed = json.loads((REPO / "config" / "schemas" / schema_file_name(kind))
                               .read_text(encoding="utf-8"))
        assert committed == schema, f"config/schemas/{schema_file_name(kind)} is stale"


def test_db_upgrade_and_tick(tmp_path: Path) -> None:
    """`ripen db upgrade` migrates; `ripen tick --now` runs the Prefect tick flow once."""
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
           "PREFECT_HOME": str(tmp_path / "prefect")}
    upgraded = ripen("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"database at revision {database.head_revision()}" in upgraded.stdout
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ticked = ripen("tick", "--now", tomorrow, env=env, timeout=240)
    assert ticked.returncode == 0, ticked.stderr
    assert "nothing due" in ticked.stdout
    assert "Finished in state Completed()" in ticked.stdout + ticked.stderr
    as_json = ripen("tick", "--now", tomorrow, "--json", env=env, timeout=240)
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout)  # Prefect's log lines go to stderr
    assert (summary["journeys"], summary["failures"], summary["at"][:10]) == (
        {}, [], tomorrow[:10])
    maintained = ripen("maintenance", "--json", env=env, timeout=240)
    assert maintained.returncode == 0, maintained.stderr
    assert {"reminded", "purged", "escalated", "webhooks", "mail"} <= \
        set(json.loads(maintained.stdout))


def test_a_failed_maintenance_part_is_named_and_the_others_report(tmp_path: Path) -> None:
    """A maintenance part that fails (here the funnel report: its table is missing, as
    after a partial restore) does not hide what the others did: they are printed (or in
    the --json document), the failure is named, and the exit code is 1."""
    db = tmp_path / "ripen.db"
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{db}", "PREFECT_HOME": str(tmp_path / "prefect")}
    assert ripen("db", "upgrade", env=env).returncode == 0
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TABLE kept_report")
    printed = ripen("maintenance", env=env, timeout=240)
    assert printed.returncode == 1, printed.stderr
    assert "reminders 0, purged 0, SLA escalations 0, webhooks" in printed.stdout
    assert "failed: keep-funnel: " in printed.stdout
    assert "error: the maintenance run had failures" in printed.stderr
    as_json = ripen("maintenance", "--json", env=env, timeout=240)
    assert as_json.returncode == 1, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert (summary["reminded"], summary["purged"], summary["funnel_seconds"]) == (0, 0, None)
    assert [f.split(":")[0] for f in summary["failures"]] == ["keep-funnel"]


def test_tick_refuses_a_bad_time() -> None:
    """`--now` must be ISO 8601; anything else is a plain error."""
    result = ripen("tick", "--now", "next tuesday")
    assert result.returncode == 1
    assert result.stderr == ('error: --now "next tuesday" is not an ISO 8601 time, '
                             "e.g. 2026-11-23T09:00:00Z\n")


def test_help_lists_the_commands() -> None:
    """`ripen --help` shows every command of this stage."""
    result = ripen("--help")
    assert result.returncode == 0
    for command in ("validate", "schema", "db", "tick", "run"):
        assert command in result.stdout


def test_graph_prints_mermaid() -> None:
    """`ripen graph JOURNEY` prints the journey's flowchart; an unknown id is a plain error."""
    result = ripen("graph", "monika-marketing")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flowchart TD\n")
    assert "  s_inf_engaged -- yes --> s_inf_done\n" in result.stdout
    unknown = ripen("graph", "monika")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith('error: unknown journey "monika"; known: after-sales,')


def test_graph_html_is_a_self_contained_page_with_every_path(tmp_path: Path) -> None:
    """`ripen graph --html` writes one page: every step with its edges, the exit rules, the
    slowest case — and nothing it would have to load from the internet."""
    page = tmp_path / "graph" / "monika.html"
    result = ripen("graph", "monika-marketing", "--html", str(page))
    assert result.returncode == 0, result.stderr
    html = page.read_text(encoding="utf-8")
    from engine.config.compiler import load_and_compile
    from engine.config.loader import ConfigPaths

    journey = load_and_compile(ConfigPaths.under(REPO)).journeys["monika-marketing"]
    for step_id in journey.order:
        assert f'data-step="{step_id}"' in html
    assert "exit rule: 2× click/download/webinar_attended on EVA content → BEW" in html
    assert "slowest case: 60d without engagement → journey praxisbrief" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched


def test_preview_writes_html_and_text(tmp_path: Path) -> None:
    """`ripen preview` renders a template for a persona and content item into two files."""
    result = ripen("preview", "content_offer", "--persona", "monika-marketing",
                   "--content", "mm-scoring-whitepaper", "--fast-lane", "mm-checkliste-auswahl",
                   "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "content_offer-monika-marketing-mm-scoring-whitepaper.html").read_text()
    text = (tmp_path / "content_offer-monika-marketing-mm-scoring-whitepaper.txt").read_text()
    for raw in (html, text):
        part = " ".join(raw.split())  # the text part is wrapped at 72 characters
        assert "Whitepaper: Lead-Scoring, das der Vertrieb akzeptiert" in part
        assert "Checkliste für die Auswahl einer Leadmanagement-Lösung" in part
        assert "/u/PREVIEW" in part
        assert "/fast-lane/PREVIEW" in part
        assert "Amtsgericht Musterstadt HRB 12345" in part
    assert "Guten Tag Erika," in text
    unknown = ripen("preview", "content_offer", "--persona", "monika-marketing",
                    "--content", "nope", "--out", str(tmp_path))
    assert unknown.returncode == 1
    assert unknown.stderr.startswith('error: unknown content "nope"; known: ')


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["deploy"]])
def test_deployment_mode_needs_secret_keys(command: list[str]) -> None:
    """Several processes on several machines must sign links alike: without
    RIPEN_SECRET_KEYS deployment mode does not start (exit 1, the fix named)."""
    result = ripen(*command)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: deployment mode needs RIPEN_SECRET_KEYS" in result.stderr


def test_validate_finds_a_misspelt_variable_in_a_branch_the_sample_lead_never_takes(
        tmp_path: Path) -> None:
    """The issue's template: `{{ lead.frist_name }}` in the `{% else %}` branch (the sample
    lead has a first name) — `ripen validate` exits 1 with its file:line:col."""
    root = tmp_path / "ripen"
    example_tree(root)
    template = root / "templates" / "email" / "content_offer.html.j2"
    greeting = "Guten Tag{% if lead.first_name %} {{ lead.first_name }}{% endif %},"
    text = template.read_text(encoding="utf-8")
    assert greeting in text
    template.write_text(text.replace(greeting, "Guten Tag {% if lead.first_name %}"
                                     "{{ lead.first_name }}{% else %}{{ lead.frist_name }}"
                                     "{% endif %},"), encoding="utf-8")
    result = ripen("validate", "--root", str(root))
    assert result.returncode == 1, result.stdout
    assert result.stderr.splitlines()[:2] == [
        "templates/email/content_offer.html.j2:3:1: undefined variable: lead has no field "
        "'frist_name'",
        "  hint: did you mean 'first_name'? lead has: first_name, last_name, job_title, "
        "company, language"]


@pytest.mark.parametrize(("args", "message"), [
    (["validate", "--config", "x"], "Error: No such option: --config"),
    (["import", "leads.csv"], "Error: Missing option '--source'."),
    (["simulate", "--leads", "abc"], "Error: Invalid value for '--leads'"),
    (["frobnicate"], "Error: No such command 'frobnicate'."),
])
def test_usage_mistakes_exit_2_with_clicks_own_message(args: list[str], message: str) -> None:
    """A misspelt flag, a missing option, a bad value, an unknown command: exit 2 with the
    usage line and what was wrong — not "a bug" (Typer raises its bundled copy of Click's
    exceptions, which the error boundary now catches too)."""
    result = ripen(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("Usage: ripen ")
    assert "a bug" not in result.stderr


def test_version_prints_the_version() -> None:
    """`ripen --version` answers, exit 0."""
    from ripen import __version__

    result = ripen("--version")
    assert (result.returncode, result.stdout) == (0, f"ripen {__version__}\n")
