"""Signed, opaque tokens for links: one salt per purpose, key rotation, expiry.

itsdangerous signs, it does not encrypt: a token carries only a random id, never an
address or a sequential id. The first key signs; every key verifies (rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, int_to_bytes, want_bytes

from engine.errors import RipenError


class Purpose(StrEnum):
    DOI = "doi"
    UNSUBSCRIBE = "unsubscribe"
    CLICK = "click"
    OPEN = "open"
    FAST_LANE = "fast-lane"
    SALES_FEEDBACK = "sales-feedback"
    WORKBENCH = "workbench"  # an operator's session cookie, not a link in a mail
    LEAD_VIEW = "lead-view"  # the rep's read-only link to a lead's timeline


class TokenInvalid(RipenError):
    """Forged, damaged, truncated, or made for another purpose."""


class TokenExpired(RipenError):
    """Authentic but too old; ``payload`` says what it was for (to offer a new link)."""

    def __init__(self, payload: str) -> None:
        super().__init__("the link has expired")
        self.payload = payload


MAX_TOKEN_LENGTH = 512


class Tokens:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one secret key is needed")
        # itsdangerous signs with the *last* key and verifies with all of them.
        self._keys = list(reversed(keys))

        self._serializers = {p: URLSafeTimedSerializer(self._keys, salt=f"ripen.{p.value}")
                             for p in Purpose}
        # itsdangerous' default signer: HMAC-SHA1 under sha1(salt + b"signer" + newest key)
        # ("django-concat"); derived once per purpose instead of once per token.
        newest = want_bytes(self._keys[-1])
        self._signing_keys = {p: hashlib.sha1(f"ripen.{p.value}".encode() + b"signer"  # noqa: S324 (itsdangerous' HMAC key derivation, not a password hash)
                                              + newest).digest() for p in Purpose}
        self._stamp: tuple[int, bytes] = (-1, b"")

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return self._serializers[purpose]

    def dumps(self, purpose: Purpose, payload: str, *, now: datetime) -> str:
        """A ``URLSafeTimedSerializer`` token signed at the caller's clock (time is injected),
        built directly (thousands per tick): payload, timestamp and HMAC exactly as
        itsdangerous writes them, except that the payload is never zlib-compressed (a
        random id does not compress; itsdangerous reads both forms)."""
        seconds = int(now.timestamp())
        if self._stamp[0] != seconds:  # a tick signs thousands of tokens in the same second
            self._stamp = (seconds, base64_encode(int_to_bytes(seconds)))
        value = base64_encode(json.dumps(payload, separators=(",", ":")).encode()) + b"." + \
            self._stamp[1]
        signature = hmac.digest(self._signing_keys[purpose], value, "sha1")
        return (value + b"." + base64_encode(signature)).decode("ascii")

    def loads(self, purpose: Purpose, token: str, *, now: datetime,
              max_age: timedelta | None = None) -> str:
        """The payload of a valid token; ``TokenExpired`` when older than ``max_age``."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH \
                or not _canonical(token):
            raise TokenInvalid("the link is not valid")
        serializer = self._serializer(purpose)
        try:
            payload, signed_at = serializer.loads(token, return_timestamp=True)
        except SignatureExpired:  # pragma: no cover - we check age ourselves below
            raise TokenInvalid("the link is not valid") from None
        except (BadSignature, UnicodeError, ValueError):
            raise TokenInvalid("the link is not valid") from None
        if not isinstance(payload, str):
            raise TokenInvalid("the link is not valid")
        if max_age is not None and now - signed_at.astimezone(now.tzinfo) > max_age:
            raise TokenExpired(payload)
        if signed_at.astimezone(now.tzinfo) - now > timedelta(minutes=5):
            raise TokenInvalid("the link is not valid")  # signed in the future: forged clock
        return payload


def _canonical(token: str) -> bool:
    """Each part is base64url exactly as we write it. The last character of a part carries
    spare bits, so without this check a changed last character can decode to the same
    signature: a different link string would be accepted as the same token."""
    parts = token.split(".")
    if parts[0] == "":  # itsdangerous marks a compressed payload with a leading dot
        parts = parts[1:]
    for part in parts:
        try:
            if base64_encode(base64_decode(part)) != part.encode("ascii"):
                return False
        except (BadData, UnicodeError, ValueError):
            return False
    return True
