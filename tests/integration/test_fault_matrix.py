"""The fault matrix: what ripen does when the parts around it fail, each with its figure.

Real parts on a virtual clock: aiosmtpd as the relay (stopped, or answering 451 / 550 5.1.1),
a loopback HTTP server as the CRM (refusing connections for 72 hours), the store on SQLite
and PostgreSQL (a dropped connection on PostgreSQL), the embedded scheduler restarted while
its tick is sending, and the clock jumping a day. Every scenario counts what the relay or
receiver actually got: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlmodel import select

from engine.addresses import address_hash
from engine.bootstrap import Ripen
from engine.outbox import LEASE
from engine.store.tables import MailOutbox, WebhookDelivery
from engine.webhooks import WebhookSender, new_secret
from tests.conftest import Figure, SmtpSink, free_port
from tests.factories import NOW
from tests.integration.test_outbox_crash import _queue, _statuses
from tests.receiver import running


class Relay(SmtpSink):
    """A loopback relay that can be down, answer 451 to a first attempt, or 550 5.1.1."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.controller: Any = None
        self.defer_first: set[str] = set()      # recipients answered 451 once
        self.unknown_users: set[str] = set()    # recipients answered 550 5.1.1
        self.delay = 0.0
        self.attempts: Counter[str] = Counter()

    def up(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def handle_RCPT(self, server: object, session: object, envelope: Any,
                          address: str, options: list[str]) -> str:
        self.attempts[address] += 1
        if address in self.unknown_users:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.defer_first and self.attempts[address] == 1:
            return "451 4.3.0 Temporary lookup failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)

    def received(self) -> Counter[str]:
        return Counter(rcpt for _, rcpts, _ in self.messages for rcpt in rcpts)


@pytest.fixture
def relay() -> Iterator[Relay]:
    made = Relay()
    try:
        yield made
    finally:
        made.down()


def _on(app: Ripen, relay: Relay, *, connections: int | None = None) -> Ripen:
    """The same ripen, sending to ``relay`` (no rate limit: the relay is the subject)."""
    settings = app.settings.model_copy(
        update={"mail_url": f"smtp://127.0.0.1:{relay.port}?starttls=no",
                "smtp_connections": connections or app.settings.smtp_connections})
    config = app.config
    config = dataclasses.replace(config, mail=config.mail.model_copy(update={"rate_limit": None}))
    return dataclasses.replace(app, settings=settings, config=config)


def _tag(app: Ripen) -> str:
    return f"\nfault matrix [{app.db.dialect.name}]: "


def _addresses(app: Ripen) -> list[str]:
    with app.uow() as uow:
        return [row.to_address or "" for row in uow.session.exec(select(MailOutbox)).all()]


def test_relay_down_for_an_hour_then_back_sends_each_mail_once(
        figure: Figure, ripen_app: Ripen, relay: Relay) -> None:
    app = _on(ripen_app, relay)
    _queue(app, 30)
    clock: Any = app.clock
    tries_while_down = Counter[str]()
    for _ in range(12):  # an hour, a send every five minutes
        tries_while_down.update(app.send_mail())
        clock.advance(timedelta(minutes=5))
    assert _statuses(app) == {"retry": 30}
    relay.up()
    waited = timedelta()
    while _statuses(app).get("sent", 0) < 30 and waited < timedelta(hours=6):
        app.send_mail()
        clock.advance(timedelta(minutes=5))
        waited += timedelta(minutes=5)
    received = relay.received()
    figure(_tag(ripen_app)
           + f"relay down 60 min: 30 mails, {tries_while_down['retry']} attempts refused, "
             f"all sent {waited} after the relay came back; received {sum(received.values())}, "
             f"duplicates {sum(n - 1 for n in received.values())}")
    assert _statuses(app) == {"sent": 30}
    assert sorted(received) == sorted(_addresses(app))
    assert set(received.values()) == {1}
    assert waited <= timedelta(hours=2, minutes=5)  # the backoff reaches 2 h at most by then


def test_an_unreachable_relay_costs_one_round_per_batch(figure: Figure, ripen_app: Ripen,
                                                        relay: Relay) -> None:
    """With the relay down, the first round's connections fail and the rest of the batch is
    not tried (each connection attempt could wait out a timeout): every mail waits for its
    backoff, none is lost."""
    from engine.outbox import UNREACHABLE

    app = _on(ripen_app, relay, connections=4)
    _queue(app, 40)
    counts = app.send_mail()
    with app.uow() as uow:
        errors = [row.last_error for row in uow.outbox_rows(status="retry", limit=100)]
    tried = [e for e in errors if e and UNREACHABLE not in e]
    figure(_tag(ripen_app) + f"relay unreachable: {len(tried)} of 40 mails tried, the rest "
           f"left for the backoff; {dict(counts)}")
    assert counts == {"retry": 40}
    assert len(errors) == 40
    assert len(tried) == 4  # one round: one mail per connection
    relay.up()
    app.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    assert app.send_mail() == {"sent": 40}
    assert set(relay.received().values()) == {1}


def test_relay_451_then_250_and_550_unknown_user(figure: Figure, ripen_app: Ripen,
                                                 relay: Relay) -> None:
    app = _on(ripen_app, relay)
    _queue(app, 10)
    addresses = _addresses(app)
    relay.defer_first = set(addresses[:6])
    relay.unknown_users = set(addresses[6:8])
    relay.up()
    first = app.send_mail()
    app.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    second = app.send_mail()
    app.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    third = app.send_mail()
    received = relay.received()
    with app.uow() as uow:
        rows = {r.to_address: r for r in uow.session.exec(select(MailOutbox)).all()}
        suppressed = uow.suppressions_of(address_hash(a) for a in relay.unknown_users)
    figure(_tag(ripen_app)
           + f"relay 451 then 250: {len(relay.defer_first)} mails sent on the 2nd attempt; "
             f"550 5.1.1: {len(relay.unknown_users)} failed and suppressed, never retried; "
             f"attempts {dict(first)} / {dict(second)} / {dict(third)}")
    assert dict(first) == {"retry": 6, "failed": 2, "sent": 2}
    assert dict(second) == {"sent": 6}
    assert dict(third) == {}
    assert all(received[a] == 1 for a in addresses if a not in relay.unknown_users)
    assert not any(received[a] for a in relay.unknown_users)
    assert {rows[a].attempts for a in relay.defer_first} == {2}
    assert {rows[a].status for a in relay.unknown_users} == {"failed"}
    assert all("5.1.1" in (rows[a].last_error or "") for a in relay.unknown_users)
    assert set(suppressed.values()) == {"hard_bounce"}
    assert len(suppressed) == 2
    assert all(relay.attempts[a] == 1 for a in relay.unknown_users)


def test_webhook_receiver_down_72_hours_then_back_drains_the_backlog(
        figure: Figure, ripen_app: Ripen) -> None:
    secret = new_secret()
    port = free_port()
    endpoint = ripen_app.config.sla.webhooks[0].model_copy(
        update={"url": f"http://127.0.0.1:{port}/hooks/ripen", "allow_private": True,
                "timeout_seconds": 1})
    clock: Any = ripen_app.clock
    with ripen_app.uow() as uow:
        uow.add(*[WebhookDelivery(webhook_id=f"msg_fault{n}", endpoint_id=endpoint.id,
                                  event_type="handover.created", payload=f'{{"n": {n}}}',
                                  created_at=clock()) for n in range(20)])
        uow.commit()

    def deliver(client: httpx.Client) -> Counter[str]:
        return WebhookSender(uow=ripen_app.uow, endpoints={endpoint.id: endpoint},
                             secrets={endpoint.id: [secret]}, clock=clock, stamp=ripen_app.wall,
                             client=client, jitter=lambda: 0.5).deliver()

    refused: Counter[str] = Counter()
    with httpx.Client() as client:
        for _ in range(72 * 2):  # nobody listens for 72 hours; the tick tries every 30 min
            refused.update(deliver(client))
            clock.advance(timedelta(minutes=30))
        with ripen_app.uow() as uow:
            states = Counter(r.status for r in uow.session.exec(select(WebhookDelivery)).all())
        assert states == {"retry": 20}
        with running(secret, port) as crm:  # the CRM is back, on the endpoint's port
            waited = timedelta()
            delivered = 0
            while delivered < 20 and waited < timedelta(hours=30):
                delivered += deliver(client)["delivered"]
                clock.advance(timedelta(minutes=30))
                waited += timedelta(minutes=30)
        ids = Counter(crm.ids())
    figure(_tag(ripen_app)
           + f"webhook receiver down 72 h: 20 deliveries, {refused['retry']} attempts refused, "
             f"0 dead; back: all 20 delivered within {waited}, "
             f"{sum(n - 1 for n in ids.values())} repeated webhook-ids")
    assert delivered == 20
    assert len(ids) == 20
    assert set(ids.values()) == {1}
    assert len(crm.verified()) == 20
    with ripen_app.uow() as uow:
        rows = uow.session.exec(select(WebhookDelivery)).all()
    assert {r.status for r in rows} == {"delivered"}
    assert min(r.attempts for r in rows) >= 8  # the schedule kept trying all along


def test_a_webhook_sender_that_outlived_its_lease_delivers_nothing_taken_over(
        figure: Figure, ripen_app: Ripen) -> None:
    """A CRM so slow that one request outlasts the lease: another sender takes the batch
    over and delivers it; the slow sender then skips every row it no longer holds."""
    secret = new_secret()
    clock: Any = ripen_app.clock
    with running(secret) as crm:
        endpoint = ripen_app.config.sla.webhooks[0].model_copy(
            update={"url": crm.url, "allow_private": True})
        with ripen_app.uow() as uow:
            uow.add(*[WebhookDelivery(webhook_id=f"msg_slow{n}", endpoint_id=endpoint.id,
                                      event_type="handover.created", payload=f'{{"n": {n}}}',
                                      created_at=clock()) for n in range(5)])
            uow.commit()

        def sender(client: httpx.Client) -> WebhookSender:
            return WebhookSender(uow=ripen_app.uow, endpoints={endpoint.id: endpoint},
                                 secrets={endpoint.id: [secret]}, clock=clock,
                                 stamp=ripen_app.wall, client=client, jitter=lambda: 0.5)

        taken_over: list[Counter[str]] = []

        class Stalled(httpx.HTTPTransport):
            """The first request hangs past the lease; meanwhile another sender runs."""

            def handle_request(self, request: httpx.Request) -> httpx.Response:
                if not taken_over:
                    clock.advance(LEASE + timedelta(minutes=1))
                    with httpx.Client() as other:
                        taken_over.append(sender(other).deliver())
                return super().handle_request(request)

        with httpx.Client(transport=Stalled()) as slow:
            stalled = sender(slow).deliver()
    ids = Counter(crm.ids())
    figure(_tag(ripen_app)
           + f"webhook sender outlived its lease: the other sender {dict(taken_over[0])}, the "
             f"slow one {dict(stalled)}; posts per webhook-id {sorted(ids.values())}")
    assert taken_over[0] == {"delivered": 5}
    assert stalled == {"lease_lost": 5}   # its one request in flight, and four never sent
    assert ids == {f"msg_slow{n}": 1 for n in range(1, 5)} | {"msg_slow0": 2}
    with ripen_app.uow() as uow:
        assert {r.status for r in uow.session.exec(select(WebhookDelivery)).all()} == {
            "delivered"}


@pytest.mark.postgresql_only  # SQLite is a file: there is no server connection to drop
@pytest.mark.parametrize("connections", [1, 4])
def test_database_connection_dropped_mid_send_loses_and_doubles_nothing(
        figure: Figure, ripen_app: Ripen, relay: Relay, connections: int) -> None:
    assert ripen_app.db.dialect.name == "postgresql"
    app = _on(ripen_app, relay, connections=connections)
    _queue(app, 40)
    relay.up()
    admin = create_engine(app.db.url, poolclass=NullPool)
    marks = Counter[str]()

    def drop_at_the_tenth_mark(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        """The server drops every ripen connection just as the 10th round's DATA mark
        goes out: inside a transaction, the worst moment."""
        if "data_started_at" in statement and statement.lstrip().upper().startswith("UPDATE"):
            marks["data"] += 1
            if marks["data"] == 10:
                with admin.connect() as other:
                    other.execute(text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                        "datname = current_database() AND pid <> pg_backend_pid()"))

    event.listen(app.db, "before_cursor_execute", drop_at_the_tenth_mark)
    try:
        with pytest.raises(SQLAlchemyError):
            app.send_mail()
    finally:
        event.remove(app.db, "before_cursor_execute", drop_at_the_tenth_mark)
        admin.dispose()
    after_drop = dict(_statuses(app))
    app.clock.advance(LEASE + timedelta(seconds=1))  # type: ignore[attr-defined]
    recovered = app.send_mail()  # fresh connections from the pool (pre-ping)
    received = relay.received()
    statuses = _statuses(app)
    figure(_tag(ripen_app)
           + f"database connections dropped at the 10th round's DATA mark ({connections} "
             f"SMTP connections): the send failed "
             f"with states {after_drop}; after the lease: {dict(recovered)}; received "
             f"{sum(received.values())} of 40, duplicates {sum(n - 1 for n in received.values())},"
             f" unknown {statuses.get('unknown', 0)}")
    # the 10th round's mark also carried the 9th round's results: rolled back with it, so
    # the 9th round's mails (accepted by the relay) are `unknown` for the operator, never
    # resent
    assert after_drop == {"sent": 8 * connections, "sending": 40 - 8 * connections}
    assert statuses == {"sent": 40 - connections, "unknown": connections}
    assert len(received) == 40
    assert set(received.values()) == {1}
    with app.uow() as uow:
        unknown = uow.outbox_rows(status="unknown")
    assert len(unknown) == connections
    assert all(received[row.to_address or ""] == 1 for row in unknown)


def test_scheduler_restarted_during_a_tick_sends_each_mail_once(
        figure: Figure, ripen_app: Ripen, relay: Relay, prefect_harness: None) -> None:
    from engine.clock import system_clock
    from flows import runtime
    from flows.tick import run_tick
    from ripen.api.app import SchedulerStatus
    from ripen.scheduler import TickScheduler

    app = _on(ripen_app, relay)
    _queue(app, 60)
    relay.delay = 0.05  # a slow relay: the tick is still sending when the restart comes
    relay.up()
    runtime.use(app)
    try:
        old = TickScheduler(tick=lambda: run_tick(), every_seconds=3600, clock=system_clock,
                            status=SchedulerStatus())
        old.start()
        deadline = time.monotonic() + 120
        while len(relay.messages) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        at_restart = len(relay.messages)
        stopping = threading.Thread(target=old.shutdown)  # waits for its running tick
        stopping.start()
        new = TickScheduler(tick=lambda: run_tick(), every_seconds=3600, clock=system_clock,
                            status=SchedulerStatus())
        new.start()  # its first tick starts at once, beside the old one still sending
        stopping.join(timeout=120)
        deadline = time.monotonic() + 120
        while _statuses(app).get("sent", 0) < 60 and time.monotonic() < deadline:
            time.sleep(0.1)
        new.shutdown()
    finally:
        runtime.use(None)
    received = relay.received()
    figure(_tag(ripen_app)
           + f"scheduler restarted during a tick (after {at_restart} of 60 mails): received "
             f"{sum(received.values())}, duplicates {sum(n - 1 for n in received.values())}")
    assert _statuses(app) == {"sent": 60}
    assert len(received) == 60
    assert set(received.values()) == {1}


def test_clock_jump_forward_a_day_sends_what_fell_due_once(
        figure: Figure, ripen_app: Ripen, relay: Relay) -> None:
    app = _on(ripen_app, relay)
    _queue(app, 20)
    relay.up()
    clock: Any = app.clock
    with app.uow() as uow:  # a sender claimed them, then the clock jumped under it
        owner_rows = uow.claim_mail(now=clock(), owner="before-the-jump",
                                    lease_until=clock() + LEASE, limit=10)
        uow.commit()
    clock.advance(timedelta(days=1))
    after = app.send_mail()
    again = app.send_mail()
    received = relay.received()
    figure(_tag(ripen_app)
           + f"clock jumped a day with 10 mails leased: the next send took over "
             f"{after.get('sent', 0)} mails ({len(owner_rows)} of them expired leases), the one "
             f"after sent {sum(again.values())}; "
             f"duplicates {sum(n - 1 for n in received.values())}")
    assert after["sent"] == 20
    assert after["recovered"] == 10
    assert dict(again) == {}
    assert set(received.values()) == {1}
    assert len(received) == 20
    assert clock() == NOW + timedelta(days=1)
