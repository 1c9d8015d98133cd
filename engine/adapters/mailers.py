"""Mail transports behind one small interface: SMTP (persistent connection) and Maildir.

SMTP cannot deliver exactly once (RFC 5321 §6.1): after DATA began and before the reply,
the outcome is unknown. ``send`` reports that as ``UNKNOWN`` so the outbox never resends
such a mail blindly; the caller records ``before_data`` to know when DATA began.
"""

from __future__ import annotations

import contextlib
import mailbox
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

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


class Mailer(Protocol):
    name: str

    def send(self, sender: str, recipient: str, message: bytes,
             before_data: Callable[[], None]) -> Result: ...

    def close(self) -> None: ...


class CaptureMailer:
    """Keeps every mail in memory, in order (``ripen simulate``): nothing leaves the process."""

    name = "capture"

    def __init__(self) -> None:
        self.mails: list[tuple[str, bytes]] = []

    def send(self, sender: str, recipient: str, message: bytes,
             before_data: Callable[[], None]) -> Result:
        before_data()
        self.mails.append((recipient, message))
        return Result(Outcome.SENT, 250)

    def take(self) -> list[tuple[str, bytes]]:
        """The mails captured since the last call."""
        taken, self.mails = self.mails, []
        return taken

    def close(self) -> None:
        pass


class MaildirMailer:
    """The embedded default: every mail becomes a file in ``var/outbox`` (a Maildir)."""

    name = "maildir"

    def __init__(self, folder: Path) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(str(folder), create=True)
        for sub in ("tmp", "new", "cur"):  # also when the folder existed without them
            (folder / sub).mkdir(parents=True, exist_ok=True)

    def send(self, sender: str, recipient: str, message: bytes,
             before_data: Callable[[], None]) -> Result:
        before_data()
        self._box.add(message)
        return Result(Outcome.SENT, 250, "stored in Maildir")

    def close(self) -> None:
        self._box.close()


class SmtpMailer:
    """SMTP with one persistent connection, STARTTLS or SSL, and optional auth.

    URL: ``smtp://user:pass@host:587`` (STARTTLS when offered), ``smtps://…:465`` (SSL),
    ``smtp://host:25?starttls=no``.
    """

    name = "smtp"

    def __init__(self, url: str, *, timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise RipenError(f"RIPEN_MAIL_URL is not an smtp:// or smtps:// URL: {url!r}")
        self.host = parsed.hostname
        self.port = parsed.port or (465 if parsed.scheme == "smtps" else 25)
        self.ssl = parsed.scheme == "smtps"
        self.starttls = "starttls=no" not in parsed.query
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.timeout = timeout
        self._context = ssl_context or ssl.create_default_context()
        self._smtp: smtplib.SMTP | None = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass
            self.close()
        smtp: smtplib.SMTP
        if self.ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self._context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        smtp.ehlo()
        if not self.ssl and self.starttls and smtp.has_extn("starttls"):
            smtp.starttls(context=self._context)
            smtp.ehlo()
        if self.username:
            smtp.login(self.username, self.password or "")
        self._smtp = smtp
        return smtp

    def send(self, sender: str, recipient: str, message: bytes,
             before_data: Callable[[], None]) -> Result:
        try:
            smtp = self._connection()
            code, reply = smtp.mail(sender)
            if code != 250:
                smtp.rset()
                return _classify(code, reply)
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                smtp.rset()
                return _classify(code, reply)
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self.close()
            return Result(Outcome.RETRY, None, f"before DATA: {exc}")
        before_data()
        try:
            code, reply = smtp.data(message)
        except smtplib.SMTPDataError as exc:
            return _classify(exc.smtp_code, exc.smtp_error)
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self.close()
            return Result(Outcome.UNKNOWN, None, f"after DATA began: {exc}")
        return _classify(code, reply)

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


def _classify(code: int, reply: bytes | str) -> Result:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    if 200 <= code < 300:
        return Result(Outcome.SENT, code, text)
    if 400 <= code < 500:
        return Result(Outcome.RETRY, code, text)
    return Result(Outcome.FAILED, code, text)


def mailer_from_url(url: str) -> Mailer:
    """``maildir:PATH`` or ``smtp(s)://…`` → a transport."""
    if url.startswith("maildir:"):
        return MaildirMailer(Path(url.removeprefix("maildir:")))
    return SmtpMailer(url)
