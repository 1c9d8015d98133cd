"""The SMTP transport against a real relay (aiosmtpd on loopback): rounds over several
connections, pipelined envelopes where the relay offers PIPELINING, and every refusal
reported per mail without disturbing the rest of the round."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from engine.adapters.mailers import Outcome, Result, SmtpMailer, Submission
from tests.conftest import SmtpSink, free_port, smtp_server


class Relay(SmtpSink):
    """Records which connection carried each mail and the commands that arrived before
    the relay answered the first of them (pipelining); refuses chosen recipients."""

    def __init__(self, *, pipelining: bool) -> None:
        super().__init__()
        self.pipelining = pipelining
        self.peers: list[object] = []
        self.refuse: dict[str, str] = {}    # recipient → RCPT reply
        self.data_answer: dict[str, str] = {}  # recipient → DATA reply
        self.hold = 0.0

    async def handle_EHLO(self, server: object, session: Any, envelope: object,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname  # the hook's duty (aiosmtpd's 5-argument form)
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server: object, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: object, session: Any, envelope: Any) -> str:
        if self.hold:
            await asyncio.sleep(self.hold)
        [recipient] = envelope.rcpt_tos
        if recipient in self.data_answer:
            return self.data_answer[recipient]
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)

    def recipients(self) -> list[str]:
        return [rcpts[0] for _, rcpts, _ in self.messages]


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def relay(request: pytest.FixtureRequest) -> Iterator[tuple[Relay, int]]:
    made = Relay(pipelining=request.param)
    with smtp_server(made) as port:
        yield made, port


def _mails(count: int, *, start: int = 0) -> list[Submission]:
    return [Submission("news@example.com", f"lead{n}@example.com",
                       f"Subject: Mail {n}\r\nMessage-ID: <m{n}@example.com>\r\n\r\n"
                       f"Hallo {n}\r\n".encode()) for n in range(start, start + count)]


def _send(mailer: SmtpMailer, mails: Sequence[Submission]) -> list[Result | None]:
    results: list[Result | None] = []
    for start in range(0, len(mails), mailer.lanes):
        results += mailer.send_round(mails[start:start + mailer.lanes],
                                     lambda ready: ready)
    return results


def test_rounds_spread_over_every_connection_and_deliver_each_mail_once(
        relay: tuple[Relay, int]) -> None:
    """Twenty mails over four kept connections: each arrives once, in order, and every
    connection carried five of them."""
    sink, port = relay
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=no", connections=4)
    writes = []
    try:
        results = _send(mailer, _mails(4))
        for lane in mailer._lanes:  # counting what each connection writes
            smtp = lane.smtp
            assert smtp is not None
            smtp.send = lambda data, send=smtp.send: writes.append(data) or send(data)
        results += _send(mailer, _mails(16, start=4))
    finally:
        mailer.close()
    assert [r.outcome if r else None for r in results] == [Outcome.SENT] * 20
    assert sink.recipients() == [f"lead{n}@example.com" for n in range(20)]
    assert sorted(sink.peers.count(peer) for peer in set(sink.peers)) == [5, 5, 5, 5]
    # pipelined: the envelope in one write, the data in another; else one per command
    # (and one QUIT per connection at the end)
    assert len(writes) == 16 * (2 if sink.pipelining else 4) + 4


def test_before_data_sees_the_round_once_and_held_back_mails_never_arrive(
        relay: tuple[Relay, int]) -> None:
    """The round's mails reach ``before_data`` together after their envelopes; a mail it
    holds back is dropped before its data (the relay discards the open transaction) and
    its connection serves the next round."""
    sink, port = relay
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=no", connections=3)
    calls: list[list[int]] = []

    def only_the_first_two(ready: Sequence[int]) -> list[int]:
        calls.append(list(ready))
        return [p for p in ready if p < 2]

    try:
        first = mailer.send_round(_mails(3), only_the_first_two)
        second = _send(mailer, _mails(3, start=3))
    finally:
        mailer.close()
    assert calls == [[0, 1, 2]]
    assert [r.outcome if r else None for r in first] == [Outcome.SENT, Outcome.SENT, None]
    assert [r.outcome if r else None for r in second] == [Outcome.SENT] * 3
    assert sink.recipients() == [f"lead{n}@example.com" for n in (0, 1, 3, 4, 5)]


def test_refusals_are_per_mail_and_the_round_goes_on(relay: tuple[Relay, int]) -> None:
    """An unknown user (550 5.1.1), a greylisted one (451) and a refused message (554
    after DATA) each get their own result; the other mails of the round are sent, and the
    connections stay usable."""
    sink, port = relay
    sink.refuse = {"lead1@example.com": "550 5.1.1 <lead1@example.com>: User unknown",
                   "lead2@example.com": "451 4.7.1 Greylisted, try again"}
    sink.data_answer = {"lead3@example.com": "554 5.7.1 Message refused"}
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=no", connections=4)
    try:
        results = _send(mailer, _mails(8))
    finally:
        mailer.close()
    outcomes = [r.outcome if r else None for r in results]
    assert outcomes == [Outcome.SENT, Outcome.FAILED, Outcome.RETRY, Outcome.FAILED,
                        Outcome.SENT, Outcome.SENT, Outcome.SENT, Outcome.SENT]
    assert results[1] is not None
    assert results[1].hard_bounce
    assert results[3] is not None
    assert not results[3].hard_bounce
    assert sink.recipients() == [f"lead{n}@example.com" for n in (0, 4, 5, 6, 7)]


def test_a_relay_that_is_down_gets_retry_for_every_mail() -> None:
    """Nobody listening: each mail of the round is to be retried (DATA never began)."""
    mailer = SmtpMailer(f"smtp://127.0.0.1:{free_port()}?starttls=no", timeout=2,
                        connections=3)
    called = []
    results = mailer.send_round(_mails(3), lambda ready: called.append(ready) or ready)
    assert [r.outcome if r else None for r in results] == [Outcome.RETRY] * 3
    assert all(r is not None and r.detail.startswith("before DATA") for r in results)
    assert called == []  # nothing reached DATA: no mark


def test_a_connection_the_relay_closed_is_reopened_once(relay: tuple[Relay, int]) -> None:
    """A kept connection the relay dropped meanwhile (idle timeout, restart) is reopened
    for the next mail instead of failing it."""
    sink, port = relay
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=no", connections=1)
    try:
        _send(mailer, _mails(1))
        lane_smtp = mailer._lanes[0].smtp  # the test breaks the kept socket
        assert lane_smtp is not None
        assert lane_smtp.sock is not None
        lane_smtp.sock.close()
        results = _send(mailer, _mails(1, start=1))
    finally:
        mailer.close()
    assert [r.outcome if r else None for r in results] == [Outcome.SENT]
    assert sink.recipients() == ["lead0@example.com", "lead1@example.com"]


def test_a_connection_idle_past_the_check_is_checked_with_noop(relay: tuple[Relay, int]
                                                               ) -> None:
    """A kept connection is reused as it is within the check interval and checked with
    NOOP after idling longer (elapsed time is injected)."""
    from engine.adapters.mailers import IDLE_CHECK_SECONDS

    sink, port = relay
    elapsed = [0.0]
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=no", connections=1,
                        monotonic=lambda: elapsed[0])
    commands: list[str] = []
    try:
        _send(mailer, _mails(1))
        smtp = mailer._lanes[0].smtp  # recording the kept connection's commands
        assert smtp is not None
        smtp.putcmd = lambda cmd, args="", put=smtp.putcmd: commands.append(cmd) or put(cmd, args)
        elapsed[0] += IDLE_CHECK_SECONDS - 1
        _send(mailer, _mails(1, start=1))
        assert "noop" not in commands
        elapsed[0] += IDLE_CHECK_SECONDS + 1
        _send(mailer, _mails(1, start=2))
        assert commands.count("noop") == 1
    finally:
        mailer.close()
    assert sink.recipients() == [f"lead{n}@example.com" for n in range(3)]


def test_leading_dots_survive_the_data_phase(relay: tuple[Relay, int]) -> None:
    """Lines that start with a dot are doubled on the wire and arrive as written."""
    sink, port = relay
    body = b"Subject: dots\r\n\r\n.first\r\nmiddle\r\n..second\r\n."
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=no", connections=1)
    try:
        [result] = mailer.send_round([Submission("a@example.com", "b@example.com", body)],
                                     lambda ready: ready)
    finally:
        mailer.close()
    assert result is not None
    assert result.outcome is Outcome.SENT
    [(_, _, content)] = sink.messages
    assert content.replace(b"\r\n", b"\n").endswith(b".first\nmiddle\n..second\n.\n")


def test_a_round_larger_than_the_connections_is_refused() -> None:
    """A round holds one mail per connection."""
    mailer = SmtpMailer("smtp://127.0.0.1:25?starttls=no", connections=2)
    with pytest.raises(ValueError, match="at most 2"):
        mailer.send_round(_mails(3), lambda ready: ready)
