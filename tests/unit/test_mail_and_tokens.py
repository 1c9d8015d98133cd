"""Tokens, addresses and message bytes: the pieces every link and mail depends on."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from engine.addresses import InvalidAddress, address_hash, normalise_email
from engine.mail.message import HeaderInjection, OutgoingMail, UnsendableAddress
from engine.tokens import Purpose, TokenExpired, TokenInvalid, Tokens

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_tokens_rotate_keys() -> None:
    """The newest key signs; tokens signed with the previous key still verify."""
    old = Tokens(["old-key" * 6])
    token = old.dumps(Purpose.DOI, "nonce", now=NOW)
    rotated = Tokens(["new-key" * 6, "old-key" * 6])
    assert rotated.loads(Purpose.DOI, token, now=NOW) == "nonce"
    assert rotated.dumps(Purpose.DOI, "nonce", now=NOW) != token
    with pytest.raises(TokenInvalid):
        Tokens(["new-key" * 6]).loads(Purpose.DOI, token, now=NOW)


def test_tokens_are_what_itsdangerous_signs_and_reads() -> None:
    """The direct signer writes exactly itsdangerous' URLSafeTimedSerializer token for a
    random id, under every purpose and key set, and itsdangerous reads it back."""
    from itsdangerous import URLSafeTimedSerializer
    from itsdangerous.encoding import base64_encode, int_to_bytes

    for keys in (["only-key" * 5], ["new-key" * 6, "old-key" * 6]):
        tokens = Tokens(keys)
        for purpose in Purpose:
            reference = URLSafeTimedSerializer(list(reversed(keys)),
                                               salt=f"ripen.{purpose.value}")
            signer = reference.make_signer()
            for when in (NOW, NOW + timedelta(seconds=1), NOW + timedelta(days=400)):
                payload = secrets.token_urlsafe(16)
                value = reference.dump_payload(payload) + b"." + \
                    base64_encode(int_to_bytes(int(when.timestamp())))
                expected = (value + b"." + signer.get_signature(value)).decode()
                assert tokens.dumps(purpose, payload, now=when) == expected
                assert reference.loads(expected) == payload


def test_tokens_are_bound_to_their_purpose() -> None:
    """A DOI token is no unsubscribe token, and the other way round."""
    tokens = Tokens(["k" * 40])
    for made, used in ((Purpose.DOI, Purpose.UNSUBSCRIBE), (Purpose.UNSUBSCRIBE, Purpose.DOI),
                       (Purpose.CLICK, Purpose.FAST_LANE)):
        with pytest.raises(TokenInvalid):
            tokens.loads(used, tokens.dumps(made, "x", now=NOW), now=NOW)


def test_tokens_expire_and_say_what_they_were_for() -> None:
    """Expiry keeps the payload so a new link can be offered."""
    tokens = Tokens(["k" * 40])
    token = tokens.dumps(Purpose.DOI, "nonce-1", now=NOW)
    assert tokens.loads(Purpose.DOI, token, now=NOW + timedelta(days=7),
                        max_age=timedelta(days=7)) == "nonce-1"
    with pytest.raises(TokenExpired) as expired:
        tokens.loads(Purpose.DOI, token, now=NOW + timedelta(days=7, seconds=1),
                     max_age=timedelta(days=7))
    assert expired.value.payload == "nonce-1"


def test_tokens_carry_no_address_or_sequential_id() -> None:
    """The payload is only what the caller puts in (a random id)."""
    token = Tokens(["k" * 40]).dumps(Purpose.DOI, "r4nd0m", now=NOW)
    assert "@" not in token
    assert len(token) < 100


@pytest.mark.parametrize(("given", "expected"), [
    ("Max.Muster@Beispiel.DE", "max.muster@beispiel.de"),
    ("  anna@example.com ", "anna@example.com"),
    ("info@Bücher.example", "info@bücher.example"),
])
def test_addresses_are_normalised(given: str, expected: str) -> None:
    """One spelling per mailbox: trimmed, lower-cased, IDN as Unicode."""
    assert normalise_email(given) == expected
    assert address_hash(given.strip()) == address_hash(expected)


@pytest.mark.parametrize(("given", "reason"), [
    ("", "the e-mail address is empty"),
    ("max", "An email address must have an @-sign."),
    ("max@@example.com", "The part after the @-sign contains invalid characters: '@'."),
    ("max@example.com\r\nBcc: x@example.com", "the e-mail address contains a line break"),
])
def test_bad_addresses_carry_a_reason(given: str, reason: str) -> None:
    """A refused address says why, in words a person understands."""
    with pytest.raises(InvalidAddress) as refused:
        normalise_email(given)
    assert str(refused.value) == reason


def _mail(**changes: object) -> OutgoingMail:
    values: dict[str, object] = {
        "to": "anna@bücher.example", "subject": "Grüße & mehr", "html": "<p>Hallo</p>",
        "text": "Hallo Anna", "message_id": "<abc@mail.example.com>",
        "sender_name": "Musterfirma Digital GmbH", "sender_address": "info@example.com",
        "date": NOW, "headers": {"List-Unsubscribe": "<https://ripen.example/u/" + "t" * 90
                                 + ">", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}}
    values.update(changes)
    return OutgoingMail(**values)  # type: ignore[arg-type]


def test_message_has_both_parts_and_unfolded_list_unsubscribe() -> None:
    """Text and HTML parts; List-Unsubscribe exactly as given (no encoded word)."""
    raw = _mail().to_bytes()
    assert b"List-Unsubscribe: <https://ripen.example/u/" + b"t" * 90 + b">\r\n" in raw
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Grüße & mehr"
    assert message["To"] == "anna@xn--bcher-kva.example"
    assert message["Message-ID"] == "<abc@mail.example.com>"
    assert message.get_body(("plain",)).get_content() == "Hallo Anna"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content() == "<p>Hallo</p>"  # type: ignore[union-attr]


@pytest.mark.parametrize("field", ["subject", "sender_name", "to", "message_id"])
@pytest.mark.parametrize("payload", ["x\r\nBcc: victim@example.com", "x\nBcc: v@example.com",
                                     "x\rBcc: v@example.com"])
def test_line_breaks_in_headers_are_refused(field: str, payload: str) -> None:
    """CR, LF or both in any header value (CVE-2024-6923 is not patched here)."""
    with pytest.raises((HeaderInjection, UnsendableAddress)):
        _mail(**{field: payload}).to_bytes()


def test_extra_header_values_are_checked_too() -> None:
    """Headers added by features (List-Unsubscribe …) get the same check."""
    with pytest.raises(HeaderInjection):
        _mail(headers={"List-Unsubscribe": "<https://x>\r\nBcc: v@example.com"}).to_bytes()
    with pytest.raises(HeaderInjection):
        _mail(headers={"Bad Name": "x"}).to_bytes()


def test_style_blocks_are_inlined_and_remote_css_never_fetched(tmp_path: Path) -> None:
    """A marketer's <style> ends up in style attributes; @media stays; <link> is dropped."""
    from engine.mail.render import Renderer

    (tmp_path / "promo.html.j2").write_text(
        '<html><head><style>.cta{color:#2f6b1f;font-weight:bold} '
        '@media (max-width:600px){.cta{display:block}}</style>'
        '<link rel="stylesheet" href="http://192.0.2.1/remote.css"></head>'
        '<body><a class="cta" href="{{ url }}">Jetzt lesen</a></body></html>')
    (tmp_path / "promo.txt.j2").write_text("Jetzt lesen: {{ url }}")
    html, text = Renderer(tmp_path).render("promo", {"url": "https://example.com/a?b=1&c=2"})
    assert '<a class="cta" href="https://example.com/a?b=1&amp;c=2" ' \
           'style="color: #2f6b1f;font-weight: bold;">' in html
    assert "@media (max-width:600px)" in html
    assert "remote.css" not in html
    assert text == "Jetzt lesen: https://example.com/a?b=1&c=2"
