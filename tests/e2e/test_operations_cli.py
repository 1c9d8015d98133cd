"""Operator commands around deployment mode and the outbox, as a real `ripen` process."""

from __future__ import annotations

from pathlib import Path

from aiosmtpd.controller import Controller
from sqlmodel import select

from engine.bootstrap import bootstrap
from engine.settings import load_settings
from engine.store.tables import MailOutbox
from tests.conftest import SmtpSink, free_port
from tests.e2e.test_cli import ripen
from tests.factories import NOW, lead


def _unknown_mail(database_url: str) -> int:
    """One mail a crashed sender left `unknown` (DATA began, no answer recorded)."""
    app = bootstrap(load_settings(database_url=database_url))
    try:
        with app.uow() as uow:
            person = lead(email="left@example.com", status="confirmed")
            uow.add(person)
            uow.flush()
            row = MailOutbox(idempotency_key="test:unknown", lead_id=person.id,
                             kind="marketing", to_address=person.email, subject="Hallo",
                             message_id="<unknown1@mail.example.com>",
                             created_at=NOW, status="unknown",
                             data_started_at=NOW, last_error="sender stopped after DATA "
                             "began; not resent")
            uow.add_mail(row, body_html="<p>x</p>", body_text="x")
            uow.commit()
            assert row.id is not None
            return row.id
    finally:
        app.dispose()


def test_outbox_list_and_settle_an_unknown_mail(tmp_path: Path) -> None:
    """`ripen outbox list --status unknown` shows it with its Message-ID; `settle --resend`
    sends it once through the relay; settling it again is refused plainly."""
    sink = SmtpSink()
    port = free_port()
    relay = Controller(sink, hostname="127.0.0.1", port=port)
    relay.start()
    try:
        env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
               "RIPEN_MAIL_URL": f"smtp://127.0.0.1:{port}?starttls=no"}
        assert ripen("db", "upgrade", env=env).returncode == 0
        row = _unknown_mail(env["RIPEN_DATABASE_URL"])
        listed = ripen("outbox", "list", "--status", "unknown", env=env)
        assert listed.returncode == 0, listed.stderr
        assert f"{row} unknown nurture <unknown1@mail.example.com>" in listed.stdout
        assert "1 mails" in listed.stdout
        settled = ripen("outbox", "settle", str(row), "--resend", env=env)
        assert settled.returncode == 0, settled.stderr
        assert "sent again: sent 1" in settled.stdout
        assert [rcpts for _, rcpts, _ in sink.messages] == [["left@example.com"]]
        again = ripen("outbox", "settle", str(row), "--sent", env=env)
        assert again.returncode == 1
        assert f"outbox row {row} is sent, not unknown" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        relay.stop()
    app = bootstrap(load_settings(database_url=env["RIPEN_DATABASE_URL"]))
    with app.uow() as uow:
        [stored] = uow.session.exec(select(MailOutbox)).all()
    app.dispose()
    assert stored.status == "sent"


def test_settle_sent_marks_it_without_sending(tmp_path: Path) -> None:
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
           "RIPEN_MAIL_URL": f"maildir:{tmp_path / 'outbox'}"}
    assert ripen("db", "upgrade", env=env).returncode == 0
    row = _unknown_mail(env["RIPEN_DATABASE_URL"])
    settled = ripen("outbox", "settle", str(row), "--sent", env=env)
    assert settled.returncode == 0, settled.stderr
    assert "marked sent" in settled.stdout
    assert not [p for p in (tmp_path / "outbox").rglob("*") if p.is_file()]  # nothing sent
    assert ripen("outbox", "list", env=env).stdout.startswith(f"{row} sent nurture")


def test_deployment_commands_need_a_prefect_server_and_a_migrated_database(
        tmp_path: Path) -> None:
    """Without PREFECT_API_URL, or with a server that does not answer, `deploy` and `worker`
    say what to set; `serve` refuses a database that is not migrated. No traceback."""
    env = {"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
           "RIPEN_SECRET_KEYS": "s" * 40}
    for command in ("deploy", "worker"):
        result = ripen(command, env=env)
        assert result.returncode == 1
        assert "deployment mode needs a Prefect server: set PREFECT_API_URL" in result.stderr
        down = ripen(command, env=env | {"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"})
        assert down.returncode == 1
        assert "does not answer" in down.stderr
        assert "Traceback" not in down.stderr + result.stderr
    served = ripen("serve", env=env)
    assert served.returncode == 1
    assert "run `ripen db upgrade` (or `ripen deploy`) first" in served.stderr
