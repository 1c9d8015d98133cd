"""Edge helpers: the client's address (trusted proxies only) and API keys."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException, Request


def client_ip(request: Request, trusted_proxies: list[str]) -> str | None:
    """The peer address; ``X-Forwarded-For`` only counts when the peer is a trusted proxy."""
    peer = request.client.host if request.client else None
    if peer is None or not _trusted(peer, trusted_proxies):
        return peer
    chain = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",")
             if part.strip()]
    # Walk from the right: the first address not belonging to our proxies is the client.
    for candidate in reversed(chain):
        if not _valid_ip(candidate):
            return peer
        if not _trusted(candidate, trusted_proxies):
            return candidate
    return peer


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(address: str, trusted: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in trusted:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def require_api_key(request: Request, keys: list[str]) -> None:
    """``Authorization: Bearer <key>``; 401 otherwise (compared in constant time)."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given or not any(
            hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise HTTPException(status_code=401, detail="a valid API key is required",
                            headers={"WWW-Authenticate": "Bearer"})
