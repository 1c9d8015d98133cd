"""`ripen import`, `ripen consent proof` and `ripen gdpr` as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select

from engine.bootstrap import bootstrap
from engine.settings import load_settings
from engine.store.tables import Lead
from tests.e2e.test_cli import ripen


def _env(tmp_path: Path) -> dict[str, str]:
    return {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
            "RIPEN_MAIL_URL": f"maildir:{tmp_path / 'outbox'}"}


def _csv(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "leads.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_import_reports_imported_merged_and_refused(tmp_path: Path) -> None:
    """Good rows get a DOI mail; bad address, formula and duplicate rows are explained."""
    env = _env(tmp_path)
    path = _csv(tmp_path, "email;first_name;company;job_title\n"
                          "anna@example.com;Anna;Muster AG;CMO\n"
                          "not-an-address;Bob;;\n"
                          "carl@example.com;=cmd|' /C calc'!A0;;\n"
                          "ANNA@example.com;Anna;;Marketingleitung\n"
                          "dora@example.com;Dora;;\n")
    result = ripen("import", str(path), "--source", "trade_fair", "--campaign", "messe",
                   env=env)
    assert result.returncode == 0, result.stderr
    assert "imported 2, merged 1, refused 2, confirmation mails sent 3" in result.stdout
    assert "line 3: An email address must have an @-sign." in result.stdout
    assert "line 4: first_name starts with '=' (a spreadsheet formula?)" in result.stdout
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 3
    app = bootstrap(load_settings(database_url=env["RIPEN_DATABASE_URL"]))
    try:
        with app.uow() as uow:
            leads = uow.session.exec(select(Lead).order_by(Lead.email)).all()
    finally:
        app.dispose()
    assert [(lead.email, lead.status, lead.source, lead.job_title) for lead in leads] == [
        ("anna@example.com", "pending", "trade_fair", "Marketingleitung"),
        ("dora@example.com", "pending", "trade_fair", None)]


def test_import_refuses_a_file_that_is_no_text(tmp_path: Path) -> None:
    """Bytes no encoding reads as text (a picture saved as .csv): a clear message naming
    the fix, exit 1, nothing imported. (Latin-1 text is read: a short file's "Jürgen" as
    cp1252, the West European reading.)"""
    path = tmp_path / "leads.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00"
                     + bytes(range(256)) * 4)
    result = ripen("import", str(path), "--source", "event", env=_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (f"error: {path} is not text in an encoding ripen can recognise; "
                             "save it as CSV UTF-8, or name the encoding with --encoding\n")
    latin = _csv(tmp_path, "email,first_name\njürgen@example.com,Jürgen\n", "latin-1")
    read = ripen("import", str(latin), "--source", "event", env=_env(tmp_path))
    assert read.returncode == 0, read.stderr
    assert "read leads.csv as cp1252: imported 1" in read.stdout


def test_import_refuses_a_file_without_email_column(tmp_path: Path) -> None:
    """The header line must name an email column."""
    path = _csv(tmp_path, "name,phone\nAnna,123\n")
    result = ripen("import", str(path), "--source", "event", env=_env(tmp_path))
    assert result.returncode == 1
    assert "has no `email` column (first line: name, phone)" in result.stderr


def test_import_refuses_huge_fields_and_unknown_sources(tmp_path: Path) -> None:
    """A 5,000-character field is refused per row; an unknown --source before anything."""
    path = _csv(tmp_path, "email,company\nhuge@example.com," + "x" * 5000 + "\n")
    result = ripen("import", str(path), "--source", "event", env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "line 2: company is longer than 1000 characters" in result.stdout
    wrong = ripen("import", str(path), "--source", "fax", env=_env(tmp_path))
    assert wrong.returncode == 1
    assert wrong.stderr.startswith('error: --source "fax" is not one of: website,')


def test_import_of_existing_customers_names_their_journey_and_stage(tmp_path: Path) -> None:
    """--customers JOURNEY [--stage]: rows marked for after-sales; wrong names refused first."""
    env = _env(tmp_path)
    path = _csv(tmp_path, "email,company,industry\nkunde@example.com,Kunde AG,automotive\n")
    result = ripen("import", str(path), "--source", "import", "--customers", "after-sales",
                   "--stage", "wik", env=env)
    assert result.returncode == 0, result.stderr
    assert "imported 1, merged 0, refused 0, confirmation mails sent 1" in result.stdout
    app = bootstrap(load_settings(database_url=env["RIPEN_DATABASE_URL"]))
    try:
        with app.uow() as uow:
            lead = uow.lead_by_email("kunde@example.com")
    finally:
        app.dispose()
    assert lead is not None
    assert (lead.customer_journey, lead.customer_stage, lead.status) == (
        "after-sales", "WIK", "pending")
    wrong = ripen("import", str(path), "--source", "import", "--customers", "praxisbrief",
                  env=env)
    assert (wrong.returncode, wrong.stderr) == (
        1, 'error: "praxisbrief" is not an after-sales journey; use one of: after-sales\n')
    lonely = ripen("import", str(path), "--source", "import", "--stage", "WIK", env=env)
    assert (lonely.returncode, lonely.stderr) == (
        1, "error: --stage needs --customers JOURNEY (the stage of that journey)\n")


def test_consent_proof_prints_and_writes_html(tmp_path: Path) -> None:
    """The ledger in the terminal, and a printable HTML file with the text as shown."""
    env = _env(tmp_path)
    path = _csv(tmp_path, "email\nproof@example.com\n")
    assert ripen("import", str(path), "--source", "event", env=env).returncode == 0
    html = tmp_path / "proof.html"
    result = ripen("consent", "proof", "proof@example.com", "--html", str(html), env=env)
    assert result.returncode == 0, result.stderr
    assert "proof@example.com: pending" in result.stdout
    assert "requested" in result.stdout
    assert "doi_sent" in result.stdout
    page = html.read_text(encoding="utf-8")
    assert "Einwilligungsnachweis" in page
    assert "Ja, ich möchte von der Musterfirma Digital GmbH" in page
    unknown = ripen("consent", "proof", "nobody@example.com", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr == "error: no lead with the address nobody@example.com\n"


def test_gdpr_export_and_erase(tmp_path: Path) -> None:
    """Export prints JSON; erase leaves the address nowhere (the API test scans all tables)."""
    env = _env(tmp_path)
    path = _csv(tmp_path, "email,first_name\nerase@example.com,Erika\n")
    assert ripen("import", str(path), "--source", "event", env=env).returncode == 0
    exported = ripen("gdpr", "export", "erase@example.com", env=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["profile"]["first_name"] == "Erika"
    erased = ripen("gdpr", "erase", "erase@example.com", "--yes", env=env)
    assert erased.returncode == 0, erased.stderr
    assert "erased erase@example.com" in erased.stdout
    again = ripen("gdpr", "export", "erase@example.com", env=env)
    assert again.returncode == 1
    assert "no lead with the address erase@example.com" in again.stderr


def test_plan_change_lists_leads_in_flight(tmp_path: Path) -> None:
    """`ripen plan-change` counts leads on another version of a journey, per step."""
    from engine.store.tables import Enrollment, JourneyVersion
    from tests.factories import NOW, lead

    env = _env(tmp_path)
    assert ripen("plan-change", env=env).stdout.startswith("no leads in flight")
    app = bootstrap(load_settings(database_url=env["RIPEN_DATABASE_URL"]))
    try:
        with app.uow() as uow:
            person = lead(email="old-version@example.com")
            uow.add(person, JourneyVersion(journey_id="monika-marketing", version="0ld0ld0ld0ld",
                                           definition={}, live_since=NOW))
            uow.flush()
            uow.add(Enrollment(lead_id=person.id or 0, journey_id="monika-marketing",
                               journey_version="0ld0ld0ld0ld", stage="INF",
                               step_id="inf-engaged", due_at=NOW, stage_entered_at=NOW,
                               started_at=NOW))
            uow.commit()
    finally:
        app.dispose()
    result = ripen("plan-change", env=env)
    assert result.returncode == 0, result.stderr
    assert "monika-marketing" in result.stdout
    assert "0ld0ld0ld0ld" in result.stdout
    assert "inf-engaged" in result.stdout  # ids whole at 80 columns; the text wraps
    assert "stays on" in result.stdout
    assert "its version" in result.stdout
    assert "…" not in result.stdout


def test_bounces_ingest_reads_a_maildir_and_explains_what_it_skipped(tmp_path: Path) -> None:
    """An operator points ripen at the bounce mailbox: counts, skipped mail, moved to cur/."""
    from tests.reports import AUTO_REPLY, arf_complaint, postfix_dsn

    box = tmp_path / "bounces"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "a").write_bytes(postfix_dsn("nobody@example.org", "<x1@mail.example.com>"))
    (box / "new" / "b").write_bytes(arf_complaint("<x2@mail.example.com>",
                                                  recipient="spam@example.org"))
    (box / "new" / "c").write_bytes(AUTO_REPLY)
    env = _env(tmp_path)
    result = ripen("bounces", "ingest", str(box), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "3 files: hard 1, soft 0, complaints 1, suppressed 2, already recorded 0, "
        "unknown recipient 0, not a report 1",
        "  c: not a multipart/report but text/plain"]
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["a:2,S", "b:2,S", "c:2,S"]

    missing = ripen("bounces", "ingest", str(tmp_path / "nowhere"), env=env)
    assert (missing.returncode, missing.stderr) == (
        1, f"error: {tmp_path / 'nowhere'}: no such file or folder\n")


def test_an_excel_csv_in_windows_1252_with_semicolons_and_umlauts_imports(
        tmp_path: Path) -> None:
    """German Excel saves "CSV" as Windows-1252 with semicolons: detected and read as
    cp1252 (said in the summary), umlauts intact; --encoding names it when detection is
    not wanted, and a wrong one is refused with the fix."""
    env = _env(tmp_path)
    text = ("sep=;\n"
            "email;first_name;last_name;company;job_title\n"
            "juergen@example.com;Jürgen;Müller;Großhandel Süd GmbH;Geschäftsführer\n"
            "baerbel@example.com;Bärbel;Schäfer;Öko-Bäckerei Köln;Einkäuferin\n")
    path = _csv(tmp_path, text, "cp1252")
    result = ripen("import", str(path), "--source", "trade_fair", env=env)
    assert result.returncode == 0, result.stderr
    assert "read leads.csv as cp1252: imported 2, merged 0, refused 0" in result.stdout
    app = bootstrap(load_settings(database_url=env["RIPEN_DATABASE_URL"]))
    try:
        with app.uow() as uow:
            people = {lead.email: (lead.first_name, lead.last_name, lead.job_title)
                      for lead in uow.session.exec(select(Lead)).all()}
    finally:
        app.dispose()
    assert people == {"juergen@example.com": ("Jürgen", "Müller", "Geschäftsführer"),
                      "baerbel@example.com": ("Bärbel", "Schäfer", "Einkäuferin")}
    named = ripen("import", str(path), "--source", "trade_fair", "--encoding", "utf-8",
                  env=env)
    assert named.returncode == 1
    assert "is not utf-8 (byte" in named.stderr
    assert "leave --encoding out to detect it" in named.stderr
