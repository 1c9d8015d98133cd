"""Secrets and personal data kept out of what ripen prints and logs.

``url`` hides the password of a connection URL (``smtp://user:***@relay:587``); ``path``
hides the signed token of a link path (``/confirm/…``, ``/u/…``, ``/c/…``, ``/o/….gif``,
``/fast-lane/…``, ``/h/…``, ``/l/…``) and every query value (``?email=…``), as an access log line
must show them: a token is a working link to somebody's consent, and a query may carry an
address.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"
#: Path prefixes followed by a signed token (see ripen.api): the token is the secret.
TOKEN_PATHS = re.compile(r"^(/(?:confirm|u|c|o|fast-lane|h|l)/)[^/?#]+")
QUERY_VALUE = re.compile(r"=([^&]*)")


def url(text: str) -> str:
    """``text`` with the password (if any) of its authority replaced by ``***``."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return HIDDEN
    if parts.password is None:
        return text
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{HIDDEN}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def path(text: str) -> str:
    """A request path with its link token and query values hidden (for access logs)."""
    base, question, query = text.partition("?")
    base = TOKEN_PATHS.sub(lambda m: m.group(1) + HIDDEN, base)
    if question:
        base += "?" + QUERY_VALUE.sub("=" + HIDDEN, query)
    return base


__all__ = ["path", "url"]
