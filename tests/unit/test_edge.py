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
