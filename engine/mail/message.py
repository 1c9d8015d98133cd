"""Mail as bytes: headers checked for CR/LF (CVE-2024-6923), Message-ID fixed at render time.

The message is assembled by hand (multipart/alternative, base64 parts): headers such as
``List-Unsubscribe`` stay exactly as written (the stdlib policy would fold a long URL into
an encoded word that clients cannot use), and it costs a tenth of ``EmailMessage``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import format_datetime
from functools import lru_cache

from engine.errors import RipenError


class HeaderInjection(RipenError):
    """A header value contained a line break."""


class UnsendableAddress(RipenError):
    """An address that cannot be written into a header without SMTPUTF8."""


def check_header(name: str, value: str) -> str:
    """Refuse CR/LF (and NUL) in a header value; CPython 3.11.7 does not (CVE-2024-6923)."""
    if any(ch in value for ch in "\r\n\0"):
        raise HeaderInjection(f"header {name} contains a line break")
    return value


def new_message_id(domain: str) -> str:
    return f"<{secrets.token_hex(16)}@{domain}>"


def ascii_address(address: str) -> str:
    """The address with an IDNA (punycode) domain; a non-ASCII local part is refused."""
    check_header("address", address)
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise UnsendableAddress(f"not an address: {address!r}")
    if not local.isascii():
        raise UnsendableAddress("a non-ASCII local part needs SMTPUTF8")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsendableAddress(f"domain {domain!r} cannot be encoded") from None
    return f"{local}@{domain}"


@lru_cache(maxsize=4096)  # subjects and sender names repeat across thousands of mails
def _encoded(value: str) -> str:
    """Plain ASCII stays as is; anything else becomes RFC 2047 encoded words."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(maxlinelen=76)


def _display(name: str, address: str) -> str:
    if name.isascii() and not any(ch in name for ch in '"\\()<>[]:;@,.'):
        return f"{name} <{address}>"
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return f"{_encoded(name)} <{address}>"


def _base64_lines(text: str) -> str:
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return "\r\n".join(data[i:i + 76] for i in range(0, len(data), 76))


@dataclass(frozen=True)
class OutgoingMail:
    """A rendered mail, as stored in the outbox."""

    to: str
    subject: str
    html: str
    text: str
    message_id: str
    sender_name: str
    sender_address: str
    date: datetime
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        boundary = f"=_ripen_{secrets.token_hex(12)}"
        sender = _display(check_header("From", self.sender_name),
                          ascii_address(self.sender_address))
        lines = [
            f"From: {sender}",
            f"To: {ascii_address(self.to)}",
            f"Subject: {_encoded(check_header('Subject', self.subject))}",
            f"Date: {format_datetime(self.date)}",
            f"Message-ID: {check_header('Message-ID', self.message_id)}",
        ]
        if self.reply_to:
            lines.append(f"Reply-To: {ascii_address(self.reply_to)}")
        for name, value in self.headers.items():
            check_header("header name", name)
            if not name.isascii() or ":" in name or " " in name:
                raise HeaderInjection(f"invalid header name {name!r}")
            lines.append(f"{name}: {_encoded(check_header(name, value))}")
        lines += [
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "",
            f"--{boundary}",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
            _base64_lines(self.text),
            f"--{boundary}",
            "Content-Type: text/html; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
            _base64_lines(self.html),
            f"--{boundary}--",
            "",
        ]
        return "\r\n".join(lines).encode("ascii")
