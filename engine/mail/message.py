"""Mail as bytes: headers checked for CR/LF (CVE-2024-6923), Message-ID fixed at render time."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from engine.errors import RipenError


class HeaderInjection(RipenError):
    """A header value contained a line break."""


def check_header(name: str, value: str) -> str:
    """Refuse CR/LF (and NUL) in a header value; CPython 3.11.7 does not (CVE-2024-6923)."""
    if any(ch in value for ch in "\r\n\0"):
        raise HeaderInjection(f"header {name} contains a line break")
    return value


def new_message_id(domain: str) -> str:
    return f"<{secrets.token_hex(16)}@{domain}>"


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
        message = EmailMessage(policy=SMTP)
        message["From"] = Address(check_header("From", self.sender_name),
                                  addr_spec=check_header("From", self.sender_address))
        message["To"] = check_header("To", self.to)
        message["Subject"] = check_header("Subject", self.subject)
        message["Date"] = format_datetime(self.date)
        message["Message-ID"] = check_header("Message-ID", self.message_id)
        if self.reply_to:
            message["Reply-To"] = check_header("Reply-To", self.reply_to)
        for name, value in self.headers.items():
            message[check_header("header name", name)] = check_header(name, value)
        message["MIME-Version"] = "1.0"
        message.set_content(self.text, subtype="plain", charset="utf-8")
        message.add_alternative(self.html, subtype="html", charset="utf-8")
        return message.as_bytes()
