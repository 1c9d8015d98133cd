"""Fuzzing the token decoders: no damaged, forged, cross-purpose or random token is accepted,
and nothing but ``TokenInvalid``/``TokenExpired`` ever comes out of a decoder."""

from __future__ import annotations

import base64
import contextlib
import string
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.tokens import Purpose, TokenExpired, TokenInvalid, Tokens

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
KEYS = ["f" * 40, "e" * 40]
ALPHABET = string.ascii_letters + string.digits + "-_."
TOKENS = Tokens(KEYS)
FUZZ = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _decoded(token: str) -> bytes:
    """The bytes a token stands for (base64url parts decoded), to tell a different token
    from another spelling of the same one."""
    parts = token.split(".")
    return b".".join(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts)


def _accepted(purpose: Purpose, token: str) -> bool:
    try:
        TOKENS.loads(purpose, token, now=NOW, max_age=timedelta(days=30))
    except (TokenInvalid, TokenExpired):
        return False
    return True


def test_every_single_character_change_is_refused() -> None:
    """Each position of a real token of each purpose replaced by every other character:
    nothing passes — not even another spelling of the same token (a changed last character
    of a base64 part can decode to the same bytes; only the canonical spelling is taken)."""
    accepted = []
    same_bytes = 0
    tried = 0
    for purpose in Purpose:
        token = TOKENS.dumps(purpose, "lead-8f3a", now=NOW)
        original = _decoded(token)
        for position in range(len(token)):
            for char in ALPHABET:
                if char == token[position]:
                    continue
                forged = token[:position] + char + token[position + 1:]
                tried += 1
                with contextlib.suppress(ValueError):
                    same_bytes += _decoded(forged) == original
                if _accepted(purpose, forged):
                    accepted.append((purpose, forged))
    assert tried > 15_000  # 6 purposes × ~50 positions × 64 characters
    assert same_bytes > 0  # such spellings exist, and were tried
    assert accepted == []


def test_truncated_extended_and_cross_purpose_tokens_are_refused() -> None:
    for purpose in Purpose:
        token = TOKENS.dumps(purpose, "lead-8f3a", now=NOW)
        assert _accepted(purpose, token)
        for cut in range(1, len(token)):
            assert not _accepted(purpose, token[:cut])
        assert not _accepted(purpose, token + "A")
        assert not _accepted(purpose, token + "." + token)
        for other in Purpose:
            if other is not purpose:
                assert not _accepted(other, token)
    # signed by a key we do not hold, or far in the future
    assert not _accepted(Purpose.CLICK, Tokens(["x" * 40]).dumps(Purpose.CLICK, "a", now=NOW))
    assert not _accepted(Purpose.CLICK,
                         TOKENS.dumps(Purpose.CLICK, "a", now=NOW + timedelta(days=1)))


@FUZZ
@given(st.text(max_size=700))
def test_random_text_is_refused_without_any_other_error(text: str) -> None:
    for purpose in Purpose:
        assert not _accepted(purpose, text)


@FUZZ
@given(st.binary(max_size=120), st.binary(max_size=40))
def test_well_formed_forgeries_are_refused(payload: bytes, signature: bytes) -> None:
    """Tokens shaped like ours (payload.timestamp.signature, base64url) with a made-up
    signature."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    stamp = b64(int(NOW.timestamp()).to_bytes(4, "big"))
    for body in (b64(payload), '"' + b64(payload) + '"'):
        forged = f"{body}.{stamp}.{b64(signature)}"
        for purpose in Purpose:
            assert not _accepted(purpose, forged)
