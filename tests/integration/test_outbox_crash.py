"""Crashes around SMTP: nothing lost, nothing sent twice, `unknown` never resent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from engine.bootstrap import Ripen
from engine.outbox import BODY_GONE, LEASE
from engine.store.tables import Lead, MailOutbox
from tests.conftest import SmtpSink
from tests.factories import NOW, lead

Smtp = tuple[SmtpSink, int]


def _queue(app: Ripen, count: int) -> list[int]:
    """Confirmed leads with one rendered marketing mail each (as a send step leaves them)."""
    with app.uow() as uow:
        people = [lead(email=f"crash{n}@example.com", status="confirmed") for n in range(count)]
        uow.add(*people)
        uow.flush()
        rows = [MailOutbox(idempotency_key=f"test:{p.id}", lead_id=p.id, kind="marketing",
                           to_address=p.email, subject=f"Mail {n}",
                           message_id=f"<m{n}@mail.example.com>", created_at=NOW)
                for n, p in enumerate(people)]
        for row in rows:
            uow.add_mail(row, body_html="<p>x</p>", body_text="x")
        uow.commit()
        return [r.id for r in rows if r.id is not None]


def _statuses(app: Ripen) -> dict[str, int]:
    with app.uow() as uow:
        rows = uow.session.exec(select(MailOutbox.status)).all()
    found: dict[str, int] = {}
    for status in rows:
        found[status] = found.get(status, 0) + 1
    return found


def test_a_sender_stopped_before_submission_loses_nothing(ripen_app: Ripen,
                                                          smtp: Smtp) -> None:
    """Rows claimed by a sender that died are sent once, after its lease expires."""
    sink, _ = smtp
    _queue(ripen_app, 20)
    with ripen_app.uow() as uow:  # a sender claims them … and dies
        claimed = uow.claim_mail(now=ripen_app.clock(), owner="dead",
                                 lease_until=ripen_app.clock() + LEASE, limit=100)
        uow.commit()
    assert len(claimed) == 20
    assert ripen_app.send_mail()["sent"] == 0           # leased: nobody else takes them
    ripen_app.clock.advance(LEASE + timedelta(seconds=1))  # type: ignore[attr-defined]
    counts = ripen_app.send_mail()
    print(f"\nrecovered {counts['recovered']}, sent {counts['sent']}")
    assert counts["sent"] == 20
    assert sorted(m["Subject"] for m in sink.parsed()) == sorted(f"Mail {n}" for n in range(20))
    ripen_app.clock.advance(LEASE * 3)  # type: ignore[attr-defined]
    assert ripen_app.send_mail()["sent"] == 0
    assert len(sink.messages) == 20


class _SlowData(SmtpSink):
    """Holds the DATA phase of one chosen mail long enough to kill the sender in it."""

    def __init__(self, slow_subject: str) -> None:
        super().__init__()
        self.slow_subject = slow_subject.encode()
        self.in_data = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        if self.slow_subject in envelope.content:
            self.in_data.set()
            await asyncio.sleep(30)
        return await super().handle_DATA(server, session, envelope)


SENDER = textwrap.dedent("""
    import sys
    from datetime import datetime
    from engine.bootstrap import Ripen
    from engine.clock import ManualClock
    from engine.config.compiler import load_and_compile
    from engine.config.loader import ConfigPaths
    from engine.settings import load_settings
    from engine.store.database import make_engine
    from pathlib import Path
    app = Ripen(settings=load_settings(database_url=sys.argv[1], mail_url=sys.argv[2],
                                       secret_keys=["k" * 40],
                                       smtp_connections=int(sys.argv[5])),
                config=load_and_compile(ConfigPaths.under(Path(sys.argv[3]))),
                db=make_engine(sys.argv[1]),
                clock=ManualClock(datetime.fromisoformat(sys.argv[4])))
    print(dict(app.send_mail(limit=1000)), flush=True)
""")


@pytest.mark.parametrize("connections", [1, 4])
def test_kill_9_during_data_leaves_unknown_and_never_resends(ripen_app: Ripen,
                                                             database_url: str, smtp: Smtp,
                                                             tmp_path: Path,
                                                             connections: int) -> None:
    """A real sender process killed mid-DATA: the mails of the round in flight are
    `unknown` (one per connection: with one, just the mail held up); the rest go out once.

    The killed process sent through one relay, the restarted sender sends through the
    app's own; every mail must be delivered exactly once across both.
    """
    restarted_relay, _ = smtp
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port
    from tests.factories import REPO

    sink = _SlowData("Mail 7")
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        _queue(ripen_app, 15)
        url = f"smtp://127.0.0.1:{port}?starttls=no"
        log = tmp_path / "sender.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-c", SENDER, database_url, url, str(REPO), NOW.isoformat(),
                 str(connections)],
                cwd=REPO, stdout=output, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO)})
            assert sink.in_data.wait(timeout=60), log.read_text()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        before = len(sink.messages)
        assert _statuses(ripen_app).get("sending", 0) >= 1

        ripen_app.clock.advance(LEASE + timedelta(seconds=1))  # type: ignore[attr-defined]
        counts = ripen_app.send_mail()
        statuses = _statuses(ripen_app)
        with ripen_app.uow() as uow:
            unknown = uow.session.exec(select(MailOutbox.subject).where(
                MailOutbox.status == "unknown")).all()
        print(f"\nbefore kill: {before} delivered; after restart: {counts}; "
              f"unknown rows: {list(unknown)}")
        # the round holding Mail 7: every mail of it had begun DATA when the kill came
        in_flight = {f"Mail {n}" for n in range(7 // connections * connections,
                                                7 // connections * connections + connections)}
        assert set(unknown) == in_flight
        assert statuses == {"sent": 15 - connections, "unknown": connections}
        subjects = [str(m["Subject"]) for m in sink.parsed() + restarted_relay.parsed()]
        assert len(subjects) == len(set(subjects))          # nothing twice
        assert set(subjects) == {f"Mail {n}" for n in range(15) if n != 7}
        assert not {str(m["Subject"]) for m in restarted_relay.parsed()} & in_flight
    finally:
        controller.stop()
    with ripen_app.uow() as uow:
        assert len(uow.session.exec(select(Lead)).all()) == 15


def test_one_send_drains_every_due_batch(ripen_app: Ripen, smtp: Smtp) -> None:
    """A tick's send goes on until nothing is due (batches of `limit`), each mail once."""
    sink, _ = smtp
    _queue(ripen_app, 12)
    counts = ripen_app.send_mail(limit=5)
    assert counts["sent"] == 12
    assert sorted(m["Subject"] for m in sink.parsed()) == sorted(f"Mail {n}" for n in range(12))
    assert _statuses(ripen_app) == {"sent": 12}
    with ripen_app.uow() as uow:
        rows = uow.session.exec(select(MailOutbox)).all()
    assert all(r.attempts == 1 and r.data_started_at is not None and r.lease_owner is None
               for r in rows)
    assert ripen_app.send_mail(limit=5)["sent"] == 0


class _StalledRelay:
    """A relay that hangs on the first round longer than the lease; meanwhile a second
    sender (another worker) recovers the expired rows and sends them."""

    def __init__(self, app: Ripen, inner: Any) -> None:
        self.app, self.inner, self.name, self.stalled = app, inner, inner.name, False
        self.lanes = inner.lanes
        self.second: dict[str, int] = {}

    def send_round(self, mails: Any, before_data: Any) -> Any:
        if not self.stalled:
            self.stalled = True
            self.app.clock.advance(LEASE + timedelta(minutes=1))  # type: ignore[attr-defined]
            self.second = dict(self.app.send_mail())
        return self.inner.send_round(mails, before_data)

    def close(self) -> None:
        self.inner.close()


def test_a_sender_whose_lease_ran_out_sends_none_of_the_rows_taken_over(
        ripen_app: Ripen, smtp: Smtp) -> None:
    """The first sender stalls past its lease; the second recovers and sends everything;
    the first then finds each row taken over and sends nothing twice."""
    from engine.outbox import deliver

    sink, _ = smtp
    _queue(ripen_app, 6)
    relay = _StalledRelay(ripen_app, ripen_app.mailer())
    first = deliver(ripen_app.uow, relay, ripen_app.sender, clock=ripen_app.clock)
    relay.close()
    subjects = [m["Subject"] for m in sink.parsed()]
    assert sorted(subjects) == sorted(f"Mail {n}" for n in range(6))  # each exactly once
    assert (relay.second.get("recovered"), relay.second.get("sent")) == (6, 6)
    assert (first.get("lease_lost"), first.get("sent", 0)) == (6, 0)
    assert _statuses(ripen_app) == {"sent": 6}


def test_a_mail_whose_body_is_gone_fails_and_the_rest_are_sent(ripen_app: Ripen,
                                                               smtp: Smtp) -> None:
    """A due row without its mail_body row (lost by hand, say) is never sent empty: it
    fails with the reason, and the other rows of the batch go out."""
    sink, _ = smtp
    ids = _queue(ripen_app, 3)
    with ripen_app.uow() as uow:
        gone = uow.outbox_row(ids[1])
        assert gone is not None
        body = uow.mail_body(gone.message_id)
        assert body is not None
        uow.session.delete(body)
        uow.commit()
    counts = ripen_app.send_mail()
    assert (counts["sent"], counts["failed"]) == (2, 1)
    assert sorted(m["Subject"] for m in sink.parsed()) == ["Mail 0", "Mail 2"]
    with ripen_app.uow() as uow:
        row = uow.outbox_row(ids[1])
        assert row is not None
        assert (row.status, row.last_error) == ("failed", BODY_GONE)
