"""Which mail link an event engaged with: the one convention the timeline, the workbench's
click rates and the A/B results all read.

An open is recorded with the idempotency key ``open:<token>`` of the mail's pixel link; a
click carries the clicked link's token in ``data["link"]`` and is marked when a mail scanner
made it (a scanner's click is no person's engagement).
"""

from __future__ import annotations

from typing import Any

OPEN_KEY = "open:"


def open_key(token_id: str) -> str:
    """The idempotency key of the open recorded for a pixel link (one open per mail)."""
    return OPEN_KEY + token_id


def engaged_link(kind: str, idempotency_key: str | None, data: dict[str, Any] | None,
                 is_scanner: bool) -> str | None:
    """The link token an ``open`` or a person's ``click`` engaged with; None otherwise."""
    if kind == "open" and idempotency_key and idempotency_key.startswith(OPEN_KEY):
        return idempotency_key.removeprefix(OPEN_KEY)
    if kind == "click" and not is_scanner and data and data.get("link"):
        return str(data["link"])
    return None
