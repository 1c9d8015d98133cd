"""The client address behind proxies: believed only from trusted ones."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from ripen.api.edge import client_ip


def _request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers,
                    "client": (peer, 1234), "query_string": b""})


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "expected"), [
    ("203.0.113.7", "198.51.100.1", [], "203.0.113.7"),                  # no proxy trusted
    ("203.0.113.7", "198.51.100.1", ["10.0.0.0/8"], "203.0.113.7"),      # peer not a proxy
    ("10.0.0.2", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),        # behind our proxy
    ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", ["10.0.0.0/8"], "198.51.100.1"),
    ("10.0.0.2", "not-an-ip", ["10.0.0.0/8"], "10.0.0.2"),               # garbage: the peer
    ("10.0.0.2", None, ["10.0.0.0/8"], "10.0.0.2"),
])
def test_client_ip(peer: str, forwarded: str | None, trusted: list[str], expected: str) -> None:
    """The rightmost address not belonging to our proxies; a spoofed prefix is ignored."""
    assert client_ip(_request(peer, forwarded), trusted) == expected


def test_the_german_form_says_each_known_refusal_in_german() -> None:
    """Every refusal the form can meet, from the engine's English reason: German with the
    field as the form labels it; an unknown reason is shown as it is, never hidden."""
    from ripen.api.pages.german import in_german

    said = {reason: in_german(reason) for reason in (
        "An email address must have an @-sign.",
        "The domain name example.c does not exist.",
        "first_name is too long (150 characters, at most 100)",
        "campaign starts with '=' (a spreadsheet formula?)",
        "consent to e-mail is required to sign up",
        "phone may hold digits, spaces and + ( ) / . - only, e.g. +49 89 1234-56",
        "header job_title contains a line break",
        'region "Bayern" is not a two-letter ISO 3166 country code such as DE, AT or CH',
        "something nobody translated")}
    assert said == {
        "An email address must have an @-sign.":
            "Eine E-Mail-Adresse braucht ein @-Zeichen (z. B. name@firma.de).",
        "The domain name example.c does not exist.":
            "Die E-Mail-Adresse ist ungültig (The domain name example.c does not exist.)",
        "first_name is too long (150 characters, at most 100)":
            "Vorname ist zu lang (150 Zeichen, höchstens 100).",
        "campaign starts with '=' (a spreadsheet formula?)":
            "Kampagne darf nicht mit „=“ beginnen.",
        "consent to e-mail is required to sign up":
            "Bitte willigen Sie ein, dass wir Ihnen E-Mails senden dürfen.",
        "phone may hold digits, spaces and + ( ) / . - only, e.g. +49 89 1234-56":
            "Die Telefonnummer darf nur Ziffern, Leerzeichen und + ( ) / . - enthalten, "
            "z. B. +49 89 1234-56.",
        "header job_title contains a line break":
            "Position darf keinen Zeilenumbruch enthalten.",
        'region "Bayern" is not a two-letter ISO 3166 country code such as DE, AT or CH':
            "Das Land ist kein zweistelliger Ländercode wie DE, AT oder CH.",
        "something nobody translated": "something nobody translated"}
