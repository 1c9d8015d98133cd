"""Mail transports behind one small interface: SMTP (pipelined, several connections) and
Maildir.

A transport sends a *round*: up to ``lanes`` mails at once, one per connection. SMTP cannot
deliver exactly once (RFC 5321 §6.1): once a message's data went out, a crash before the
reply leaves its outcome unknown. So before any data goes out the transport calls
``before_data`` once for the round with the mails whose DATA may begin; the caller makes
that durable (one commit for the round) and answers which may go on. A crash then leaves at
most ``lanes`` mails unknown — the outbox never resends those blindly.
"""

from __future__ import annotations

import contextlib
import mailbox
import smtplib
import ssl
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

from engine.errors import RipenError


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"        # 4xx, or the connection failed before DATA
    FAILED = "failed"      # 5xx: permanent
    UNKNOWN = "unknown"    # crash/timeout after DATA began: never resent blindly


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    code: int | None = None
    detail: str = ""

    @property
    def hard_bounce(self) -> bool:
        """5.1.x (bad mailbox/address): the address is suppressed."""
        return self.outcome is Outcome.FAILED and self.detail.startswith("5.1.")


@dataclass(frozen=True)
class Submission:
    """One mail of a round: envelope addresses (ASCII, checked) and the message bytes."""

    sender: str
    recipient: str
    message: bytes


#: Called once per round with the positions of the mails whose DATA may begin; returns the
#: positions that may go on (the others are dropped unsent: their lease was lost).
BeforeData = Callable[[Sequence[int]], Collection[int]]


class Mailer(Protocol):
    name: str
    #: How many mails a round holds (SMTP: connections, each with one mail in flight).
    lanes: int

    def send_round(self, mails: Sequence[Submission],
                   before_data: BeforeData) -> list[Result | None]:
        """One result per mail; ``None`` for a mail ``before_data`` held back."""
        ...

    def close(self) -> None: ...


def _stored_round(mails: Sequence[Submission], before_data: BeforeData,
                  store: Callable[[Submission], object], detail: str) -> list[Result | None]:
    """A round for a local transport: every mail may begin at once."""
    allowed = set(before_data(range(len(mails))))
    results: list[Result | None] = []
    for position, mail in enumerate(mails):
        if position in allowed:
            store(mail)
            results.append(Result(Outcome.SENT, 250, detail))
        else:
            results.append(None)
    return results


class CaptureMailer:
    """Keeps every mail in memory, in order (``ripen simulate``): nothing leaves the process."""

    name = "capture"
    lanes = 64

    def __init__(self) -> None:
        self.mails: list[tuple[str, bytes]] = []

    def send_round(self, mails: Sequence[Submission],
                   before_data: BeforeData) -> list[Result | None]:
        return _stored_round(mails, before_data,
                             lambda mail: self.mails.append((mail.recipient, mail.message)),
                             "captured")

    def take(self) -> list[tuple[str, bytes]]:
        """The mails captured since the last call."""
        taken, self.mails = self.mails, []
        return taken

    def close(self) -> None:
        pass


class MaildirMailer:
    """The embedded default: every mail becomes a file in ``var/outbox`` (a Maildir)."""

    name = "maildir"
    lanes = 16

    def __init__(self, folder: Path) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(str(folder), create=True)
        for sub in ("tmp", "new", "cur"):  # also when the folder existed without them
            (folder / sub).mkdir(parents=True, exist_ok=True)

    def send_round(self, mails: Sequence[Submission],
                   before_data: BeforeData) -> list[Result | None]:
        return _stored_round(mails, before_data, lambda mail: self._box.add(mail.message),
                             "stored in Maildir")

    def close(self) -> None:
        self._box.close()


#: A connection unused this long is checked with NOOP before its next mail.
IDLE_CHECK_SECONDS = 10.0
_CRLF = b"\r\n"


class _Aborted(Exception):
    """The lane's open DATA was dropped (its connection closed): nothing was submitted."""


class _Lane:
    """One SMTP connection and the state of the mail it carries in this round."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer
        self.smtp: smtplib.SMTP | None = None
        self.pipelining = False
        self.used_at = 0.0

    def open(self) -> smtplib.SMTP:
        """The connection: kept open across rounds, checked after idling, reopened when
        gone."""
        now = self.mailer.monotonic()
        if self.smtp is not None and now - self.used_at > IDLE_CHECK_SECONDS:
            try:
                if self.smtp.noop()[0] != 250:
                    self.close()
            except (smtplib.SMTPException, OSError):
                self.drop()
        if self.smtp is None:
            self.smtp = self.mailer.connect()
            self.pipelining = self.smtp.has_extn("pipelining")
        self.used_at = now
        return self.smtp

    def connection(self) -> smtplib.SMTP:
        """The connection this round's mail is on (gone: the mail fails, not the round)."""
        if self.smtp is None:
            raise smtplib.SMTPServerDisconnected("connection closed")
        return self.smtp

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
            self.smtp = None

    def drop(self) -> None:
        """Close without QUIT (mid-DATA a QUIT would be taken as message text); the
        server discards a message whose data did not end."""
        if self.smtp is not None:
            with contextlib.suppress(OSError):
                self.smtp.close()
            self.smtp = None


class SmtpMailer:
    """SMTP over ``connections`` persistent connections, STARTTLS or SSL, optional auth;
    envelope commands pipelined (RFC 2920) where the relay offers PIPELINING.

    URL: ``smtp://user:pass@host:587`` (STARTTLS when offered), ``smtps://…:465`` (SSL),
    ``smtp://host:25?starttls=no``; ``connections`` comes from ``RIPEN_SMTP_CONNECTIONS``.
    A round sends one mail per connection: all envelopes (MAIL, RCPT, DATA) go out, then
    the replies are read; ``before_data`` marks the mails whose DATA began (one commit);
    then all message data goes out and the final replies are read. Each mail costs two
    round trips, shared by the whole round.
    """

    name = "smtp"

    def __init__(self, url: str, *, timeout: float = 30.0, connections: int = 1,
                 ssl_context: ssl.SSLContext | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise RipenError(f"RIPEN_MAIL_URL is not an smtp:// or smtps:// URL: {url!r}")
        if connections < 1:
            raise RipenError("RIPEN_SMTP_CONNECTIONS must be at least 1")
        self.host = parsed.hostname
        self.port = parsed.port or (465 if parsed.scheme == "smtps" else 25)
        self.ssl = parsed.scheme == "smtps"
        self.starttls = parse_qs(parsed.query).get("starttls", ["yes"])[0] != "no"
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.timeout = timeout
        self.lanes = connections
        self.monotonic = monotonic  # real elapsed time: when a kept connection is checked
        self._context = ssl_context  # made when first needed (loading the CAs takes ~20 ms)
        self._lanes = [_Lane(self) for _ in range(connections)]

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def connect(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self.ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self._tls())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if not self.ssl and self.starttls and smtp.has_extn("starttls"):
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            with contextlib.suppress(OSError):
                smtp.close()
            raise
        return smtp

    def send_round(self, mails: Sequence[Submission],
                   before_data: BeforeData) -> list[Result | None]:
        if len(mails) > self.lanes:
            raise ValueError(f"a round holds at most {self.lanes} mails")
        lanes = self._lanes[:len(mails)]
        results: list[Result | None] = [None] * len(mails)
        ready = []
        for position, (lane, mail) in enumerate(zip(lanes, mails, strict=True)):
            outcome = self._envelope_out(lane, mail)
            if outcome is not None:
                results[position] = outcome
        for position, lane in enumerate(lanes):
            if results[position] is None:
                outcome = self._envelope_replies(lane)
                if outcome is None:
                    ready.append(position)
                else:
                    results[position] = outcome
        if not ready:
            return results
        try:
            allowed = set(before_data(ready))
        except BaseException:
            for position in ready:
                lanes[position].drop()
            raise
        sent = []
        for position in ready:
            lane = lanes[position]
            if position not in allowed:
                lane.drop()
                continue
            try:
                lane.connection().send(_message_data(mails[position].message))
                sent.append(position)
            except (smtplib.SMTPException, OSError) as exc:
                lane.drop()
                results[position] = Result(Outcome.UNKNOWN, None, f"after DATA began: {exc}")
        for position in sent:
            lane = lanes[position]
            try:
                code, reply = lane.connection().getreply()
            except (smtplib.SMTPException, OSError) as exc:
                lane.drop()
                results[position] = Result(Outcome.UNKNOWN, None, f"after DATA began: {exc}")
                continue
            results[position] = _classify(code, reply)
            if code == 421:
                lane.drop()
        return results

    def _envelope_out(self, lane: _Lane, mail: Submission) -> Result | None:
        """MAIL FROM, RCPT TO and DATA written at once (pipelined); without PIPELINING
        they are exchanged one by one here. None: the replies are still to be read."""
        for attempt in (1, 2):
            fresh = lane.smtp is None
            try:
                smtp = lane.open()
                if lane.pipelining:
                    smtp.send(f"MAIL FROM:<{mail.sender}>\r\nRCPT TO:<{mail.recipient}>\r\n"
                              "DATA\r\n")
                    return None
                return self._envelope_one_by_one(smtp, lane, mail)
            except (TimeoutError, smtplib.SMTPException, OSError) as exc:
                lane.drop()
                if fresh or attempt == 2:  # a stale kept connection gets one reconnect
                    return Result(Outcome.RETRY, None, f"before DATA: {exc}")
        raise AssertionError("unreachable")

    def _envelope_one_by_one(self, smtp: smtplib.SMTP, lane: _Lane,
                             mail: Submission) -> Result | None:
        for command, accepted in ((f"MAIL FROM:<{mail.sender}>", (250,)),
                                  (f"RCPT TO:<{mail.recipient}>", (250, 251))):
            smtp.putcmd(command)
            code, reply = smtp.getreply()
            if code not in accepted:
                return self._refused(lane, code, reply)
        smtp.putcmd("DATA")  # its reply is read with the round's other envelopes
        return None

    def _envelope_replies(self, lane: _Lane) -> Result | None:
        """Read what the envelope got; None when the relay waits for the data (354)."""
        expected = ((250,), (250, 251), (354,)) if lane.pipelining else ((354,),)
        replies: list[tuple[int, bytes]] = []
        try:
            smtp = lane.connection()
            for _ in expected:
                replies.append(smtp.getreply())
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            lane.drop()
            refused = _first_refused(replies, expected)
            return _classify(*refused) if refused else \
                Result(Outcome.RETRY, None, f"before DATA: {exc}")
        refused = _first_refused(replies, expected)
        if refused is None:
            return None
        if replies[-1][0] == 354:  # the relay waits for data we will not send
            lane.drop()
            return _classify(*refused)
        return self._refused(lane, *refused)

    def _refused(self, lane: _Lane, code: int, reply: bytes) -> Result:
        """The relay refused the envelope: reset the transaction (or drop a connection the
        relay is closing) and say why."""
        if code == 421 or code < 0:
            lane.drop()
        else:
            try:
                lane.connection().rset()
            except (smtplib.SMTPException, OSError):
                lane.drop()
        if code < 0:
            return Result(Outcome.RETRY, None, "before DATA: unreadable reply")
        return _classify(code, reply)

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()


def _first_refused(replies: Sequence[tuple[int, bytes]],
                   expected: Sequence[tuple[int, ...]]) -> tuple[int, bytes] | None:
    for (code, reply), accepted in zip(replies, expected, strict=False):
        if code not in accepted:
            return code, reply
    return None


def _message_data(message: bytes) -> bytes:
    """The data phase: leading dots doubled, ended by CRLF.CRLF (RFC 5321 §4.5.2)."""
    data = message.replace(b"\n.", b"\n..") if b"\n." in message else message
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(_CRLF):
        data += _CRLF
    return data + b"." + _CRLF


def _classify(code: int, reply: bytes | str) -> Result:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    if 200 <= code < 300:
        return Result(Outcome.SENT, code, text)
    if 400 <= code < 500:
        return Result(Outcome.RETRY, code, text)
    return Result(Outcome.FAILED, code, text)


def mailer_from_url(url: str, *, connections: int = 1,
                    monotonic: Callable[[], float] = time.monotonic) -> Mailer:
    """``maildir:PATH`` or ``smtp(s)://…`` (over ``connections`` connections) → a
    transport."""
    if url.startswith("maildir:"):
        return MaildirMailer(Path(url.removeprefix("maildir:")))
    return SmtpMailer(url, connections=connections, monotonic=monotonic)
