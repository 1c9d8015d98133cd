"""Edge helpers: the client's address (trusted proxies only) and API keys."""

from __future__ import annotations

import hmac
import ipaddress
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPBearer
from pydantic import AfterValidator, BaseModel

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _storable(value: datetime) -> datetime:
    """An aware time in UTC (no zone given: UTC) between 1970 and 2100; a time whose UTC
    form does not exist (year 1 at +14:00) is refused, not a 500."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is not a time between 1970 and 2100") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError("is not a time between 1970 and 2100")
    return utc


#: A time from another system (events, bounces): aware, UTC, within a range ripen can store.
Moment = Annotated[datetime, AfterValidator(_storable)]


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


#: The API key as OpenAPI declares it (so /docs offers "Authorize"); the check itself is
#: ``ripen.api.guard``'s, before the body is read.
API_KEY = HTTPBearer(auto_error=False, scheme_name="apiKey",
                     description="an entry of RIPEN_API_KEYS: `Authorization: Bearer <key>`")


class Problem(BaseModel):
    """What an error answer carries."""

    error: str


ANSWERS = {401: "no API key, or a wrong one", 404: "no such lead or handover",
           409: "refused in the state the lead or handover is in",
           413: "the body is larger than the route's limit",
           422: "a field is missing or invalid (the error names it)",
           429: "over a limit; retry after the Retry-After header's seconds"}


def behind_api_key(*codes: int) -> dict[str, Any]:
    """Route options of an operation behind the API key: the security scheme and the error
    answers it may give (401 and 413 always, and ``codes``)."""
    return {"dependencies": [Security(API_KEY)],
            "responses": {code: {"model": Problem, "description": ANSWERS[code]}
                          for code in sorted({401, 413, *codes})}}


def valid_api_key(authorization: str, keys: list[str]) -> bool:
    """``Bearer <key>`` with one of ``keys`` (each compared in constant time)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and bool(given) and any(
        hmac.compare_digest(given.encode(), key.encode()) for key in keys)


def require_api_key(request: Request, keys: list[str]) -> None:
    """``Authorization: Bearer <key>``; 401 otherwise."""
    if not valid_api_key(request.headers.get("authorization", ""), keys):
        raise HTTPException(status_code=401, detail="a valid API key is required",
                            headers={"WWW-Authenticate": "Bearer"})
