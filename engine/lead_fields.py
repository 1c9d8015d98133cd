"""What a person or another system may tell us about a lead, checked once for every way in.

The sign-up form, its JSON twin, ``POST /api/leads``, the CSV import and the CRM's profile
updates all store into the same columns; each text's limit is read from the column it is
stored in (``LIMITS``), so the check and the store cannot drift apart, and PostgreSQL never
sees a value longer than its column (SQLite would silently keep it). Refusals name the field
and the fix, for the person at the form and for the import summary's line.
"""

from __future__ import annotations

import re
from typing import Any

from engine.errors import RipenError
from engine.mail.message import HeaderInjection, check_header
from engine.store.tables import Account, ConsentRecord, Event, Lead

#: Where each field is stored: (table, column). A field stored in two places is checked
#: against the shorter column (``test_lead_fields`` keeps the pairs listed here).
STORED_IN: dict[str, tuple[tuple[Any, str], ...]] = {
    "first_name": ((Lead, "first_name"),),
    "last_name": ((Lead, "last_name"),),
    "job_title": ((Lead, "job_title"),),
    "phone": ((Lead, "phone"),),
    "company": ((Account, "name"),),
    "industry": ((Account, "industry"),),
    "campaign": ((Lead, "campaign"), (ConsentRecord, "campaign")),
    "persona": ((Lead, "persona_id"),),
    "consent_version": ((Lead, "consent_version"), (ConsentRecord, "text_version")),
    "content": ((Event, "content_id"),),
    "form": ((ConsentRecord, "form"),),
    "customer_journey": ((Lead, "customer_journey"),),
}


def column_length(table: Any, column: str) -> int:
    length = table.__table__.columns[column].type.length
    assert isinstance(length, int), f"{table.__name__}.{column} has no length"
    return length


LIMITS: dict[str, int] = {name: min(column_length(t, c) for t, c in places)
                          for name, places in STORED_IN.items()}
#: Spreadsheet programs run a cell that starts like this as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PHONE = re.compile(r"\+?[0-9][0-9 ()/.\-]*")
LANGUAGE = re.compile(r"([A-Za-z]{2})(?:[-_][A-Za-z0-9]{1,8})*")


class InvalidField(RipenError, ValueError):
    """A value that cannot be stored as given; the message names the field and the fix."""


def text(name: str, value: object) -> str | None:
    """``value`` stripped (None when empty), or ``InvalidField`` with the reason: not text, a
    line break (it could reach a mail header), longer than its column, a formula start."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(f"{name} must be text")
    value = value.strip()
    if not value:
        return None
    try:
        check_header(name, value)
    except HeaderInjection as exc:
        raise InvalidField(str(exc)) from None
    limit = LIMITS[name]
    if len(value) > limit:
        raise InvalidField(f"{name} is too long ({len(value)} characters, at most {limit})")
    if name == "phone":
        if not PHONE.fullmatch(value):
            raise InvalidField("phone may hold digits, spaces and + ( ) / . - only, "
                               "e.g. +49 89 1234-56")
    elif value.startswith(FORMULA_START):
        raise InvalidField(f"{name} starts with {value[0]!r} (a spreadsheet formula?)")
    return value


def language(value: object) -> str | None:
    """A two-letter language code (ISO 639-1): ``de``, ``en``; a region or script is
    dropped (``en-US`` → ``en``, as mail clients and browsers send it)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > 35 or \
            not (match := LANGUAGE.fullmatch(value.strip())):
        shown = value[:12] if isinstance(value, str) else type(value).__name__
        raise InvalidField(f'language "{shown}" is not a language code such as de or en '
                           "(ISO 639-1, optionally with a region: de-AT)")
    return match.group(1).lower()


__all__ = ["FORMULA_START", "LIMITS", "InvalidField", "column_length", "language", "text"]
