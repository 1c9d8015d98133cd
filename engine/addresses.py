"""E-mail addresses: validated and normalised once, at the door (email-validator)."""

from __future__ import annotations

import hashlib

from email_validator import EmailNotValidError, validate_email

from engine.errors import RipenError


class InvalidAddress(RipenError):
    """The address was refused; the message says why, for the person who typed it."""


def normalise_email(text: str, *, check_deliverability: bool = False) -> str:
    """The normalised address, or ``InvalidAddress`` with the reason.

    email-validator normalises Unicode and IDN domains; the whole address is then
    lower-cased: RFC 5321 allows case-sensitive local parts, but mailbox providers treat
    them as one, and a person who types ``Max@`` once and ``max@`` later is one lead.
    Deliverability (a DNS lookup) is off by default: nothing may call out at run time.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidAddress("the e-mail address is empty")
    if any(ch in text for ch in "\r\n\0"):
        raise InvalidAddress("the e-mail address contains a line break")
    if len(text) > 320:
        raise InvalidAddress("the e-mail address is too long (at most 320 characters)")
    try:
        result = validate_email(text.strip(), check_deliverability=check_deliverability)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return str(result.normalized).lower()


def address_hash(email: str) -> str:
    """SHA-256 of the normalised, lower-cased address: what the suppression list keeps."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
