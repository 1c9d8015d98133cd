"""Signed webhook delivery per Standard Webhooks, from the ``webhook_delivery`` outbox.

Signature: ``v1,`` + base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}"))``
with the base64-decoded part of a ``whsec_…`` secret. During key rotation an endpoint's
environment variable holds several secrets (space-separated, newest first) and every
delivery carries one signature per secret.

Delivery: claimed with a lease (a crashed sender's rows are picked up again — with the same
``webhook-id``, so the receiver deduplicates); only 2xx is success; 3xx is not followed and
counts as a failure; 410 disables the endpoint; 429/5xx/timeouts retry with exponential
backoff and jitter, honouring ``Retry-After``; past the endpoint's retry horizon (3 days by
default) a delivery is ``dead`` until an operator replays it (same ``webhook-id``).
Endpoint addresses are resolved before each attempt and refused unless every one is globally
routable (unless the endpoint allows private addresses); the request then goes to the very
address that was checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlparse

import httpx

from engine.clock import Clock
from engine.config.sla import WebhookEndpoint
from engine.errors import RipenError
from engine.store.tables import WebhookDelivery
from engine.store.uow import UowFactory

#: Waits after each failed attempt (then every 24 h until the horizon), before jitter.
SCHEDULE = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30),
            timedelta(hours=2), timedelta(hours=5), timedelta(hours=10), timedelta(hours=14),
            timedelta(hours=20), timedelta(hours=24))
LEASE = timedelta(minutes=5)
MAX_RETRY_AFTER = timedelta(hours=24)

Resolver = Callable[[str, int], Sequence[str]]


class BadSecret(RipenError):
    """A webhook secret that is not ``whsec_`` + base64."""


def secret_key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise BadSecret("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise BadSecret("a webhook secret is whsec_ followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise BadSecret("a webhook secret holds 24 to 64 bytes")
    return key


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secrets_: Sequence[str], webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header: one ``v1,…`` per secret, space-separated."""
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), content, hashlib.sha256).digest())
        .decode() for s in secrets_)


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port,
                                                                  type=socket.SOCK_STREAM)})


#: Special-purpose blocks that are not globally reachable (IANA registries), listed here
#: too: this CPython's ``is_global`` still calls 192.0.0.0/24 and some IPv6 blocks global.
NOT_GLOBAL = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/127", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10",
    "fec0::/10", "ff00::/8", "64:ff9b:1::/48")]
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def globally_routable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Reachable on the internet, and so is every IPv4 address it carries inside (IPv4-mapped,
    6to4, Teredo, NAT64): ``2002:7f00:1::`` is loopback in disguise."""
    if not address.is_global or any(address in net for net in NOT_GLOBAL
                                    if net.version == address.version):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inside = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if address in NAT64:
            inside.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(globally_routable(v4) for v4 in inside if v4 is not None)
    return True


class Refused(RipenError):
    """The endpoint may not be called now (it does not resolve, or to an internal address)."""


def endpoint_address(url: str, resolver: Resolver, *, allow_private: bool) -> str:
    """The address to connect to for ``url``: the first its host resolves to, after every
    address it resolves to was checked (SSRF guard) unless ``allow_private``. The sender
    connects to this very address, so a second DNS answer cannot slip in between."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    try:
        addresses = resolver(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except OSError as exc:
        raise Refused(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise Refused(f"cannot resolve {host}: no address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if not allow_private and not globally_routable(address):
            raise Refused(f"{host} resolves to {text}, not a globally routable address "
                          "(loopback, private, shared, link-local, reserved or an IPv4 "
                          "address of that kind inside IPv6); set allow_private: true for "
                          "an internal CRM")
    return addresses[0].split("%")[0]


def refused_address(url: str, resolver: Resolver) -> str | None:
    """Why the endpoint's address may not be called (SSRF guard), or None."""
    try:
        endpoint_address(url, resolver, allow_private=False)
    except Refused as exc:
        return str(exc)
    return None


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``url`` with its host replaced by ``address``, the Host header that names the host
    again, and (for https) the name the TLS handshake and certificate check use."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parsed.port}" if parsed.port else "")
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return parsed._replace(netloc=netloc).geturl(), {"host": parsed.netloc.rpartition("@")[2]}, \
        extensions


@dataclass
class WebhookSender:
    uow: UowFactory
    endpoints: Mapping[str, WebhookEndpoint]
    secrets: Mapping[str, Sequence[str]]     # endpoint id → secrets, newest first
    clock: Clock                             # scheduling: due times, horizon, backoff
    stamp: Clock                             # the webhook-timestamp receivers check (±5 min)
    client: httpx.Client
    resolver: Resolver = system_resolver
    jitter: Callable[[], float] = random.random
    lease: timedelta = LEASE

    def deliver(self, *, ids: Sequence[int] | None = None, limit: int = 200) -> Counter[str]:
        """Attempt every due delivery (or just ``ids``); count the outcomes.

        Before each attempt the sender renews its lease on the row (and, every quarter
        lease, on the rest of its batch) and attempts only rows it still holds: one whose
        lease ran out (a receiver slower than the lease) belongs to the sender that took it
        over, so the two do not both go on delivering it."""
        owner = secrets.token_hex(8)
        counts: Counter[str] = Counter()
        now = self.clock()
        with self.uow() as uow:
            rows = uow.claim_webhooks(now=now, owner=owner, lease_until=now + self.lease,
                                      limit=limit, ids=ids)
            disabled = uow.disabled_endpoints()
            uow.commit()
        renewed_at = now
        for row in rows:
            now = self.clock()
            renew = now - renewed_at >= self.lease / 4  # the batch, a few times per lease
            with self.uow() as uow:
                held = uow.renew_webhook_lease(row.id or 0, owner=owner,
                                               lease_until=now + self.lease, renew_batch=renew)
                uow.commit()
            if renew:
                renewed_at = now
            if not held:
                counts["lease_lost"] += 1
                continue
            counts[self._attempt(row, disabled, owner)] += 1
        return counts

    def _attempt(self, row: WebhookDelivery, disabled: set[str], owner: str) -> str:
        endpoint = self.endpoints.get(row.endpoint_id)
        if endpoint is None:
            return self._finish(row, owner, "dead", None, "endpoint no longer configured")
        if endpoint.id in disabled:
            return self._finish(row, owner, "disabled", None, "endpoint disabled (410 Gone)")
        keys = self.secrets.get(endpoint.id) or []
        if not keys:
            return self._retry(row, owner, endpoint, None,
                               f"no secret in ${endpoint.secret_env}", None)
        try:
            address = endpoint_address(str(endpoint.url), self.resolver,
                                       allow_private=endpoint.allow_private)
        except Refused as refused:
            return self._retry(row, owner, endpoint, None, str(refused), None)
        url, host, extensions = pinned(str(endpoint.url), address)
        timestamp = int(self.stamp().timestamp())
        headers = {"content-type": "application/json", "user-agent": "ripen-webhooks/1",
                   **host, "webhook-id": row.webhook_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(keys, row.webhook_id, timestamp, row.payload)}
        try:
            response = self.client.post(url, content=row.payload.encode(), headers=headers,
                                        follow_redirects=False, extensions=extensions,
                                        timeout=endpoint.timeout_seconds)
        except httpx.TimeoutException:
            return self._retry(row, owner, endpoint, None, "timed out", None)
        except httpx.HTTPError as exc:
            return self._retry(row, owner, endpoint, None, f"{type(exc).__name__}: {exc}",
                               None)
        code = response.status_code
        if 200 <= code < 300:
            return self._finish(row, owner, "delivered", code, None)
        if code == 410:
            with self.uow() as uow:
                uow.disable_endpoint(endpoint.id, "410 Gone", self.clock())
                uow.commit()
            return self._finish(row, owner, "disabled", code, "410 Gone: endpoint disabled")
        detail = f"HTTP {code}" + (" (redirect not followed)" if 300 <= code < 400 else "")
        return self._retry(row, owner, endpoint, code, detail,
                           response.headers.get("retry-after"))

    def _retry(self, row: WebhookDelivery, owner: str, endpoint: WebhookEndpoint,
               code: int | None,
               detail: str, retry_after: str | None) -> str:
        now = self.clock()
        attempt = row.attempts + 1
        wait = SCHEDULE[min(attempt, len(SCHEDULE)) - 1]
        wait = wait * (0.8 + 0.4 * self.jitter())  # ±20 % so receivers are not hit in step
        asked = _retry_after(retry_after, now)
        if asked is not None:
            wait = max(wait, min(asked, MAX_RETRY_AFTER))
        if now + wait > row.created_at + endpoint.retry_horizon:
            return self._finish(row, owner, "dead", code, f"{detail}; retries exhausted")
        return self._finish(row, owner, "retry", code, detail, next_attempt=now + wait)

    def _finish(self, row: WebhookDelivery, owner: str, status: str, code: int | None,
                detail: str | None, *, next_attempt: datetime | None = None) -> str:
        now = self.clock()
        with self.uow() as uow:
            current = uow.webhook(row.id or 0)
            assert current is not None
            if current.lease_owner != owner:  # taken over meanwhile: its new owner records
                return "lease_lost"
            current.status = status
            current.attempts += 1 if code is not None or status in ("retry", "dead") else 0
            current.last_status_code = code
            current.last_error = detail[:1000] if detail else None
            current.next_attempt_at = next_attempt
            current.lease_owner = current.lease_until = None
            if status == "delivered":
                current.delivered_at = now
            uow.add(current)
            uow.commit()
        return status


def _retry_after(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when - now, timedelta(0)) if when.tzinfo else None


def replay(uow_factory: UowFactory, delivery_id: int, now: datetime) -> WebhookDelivery:
    """Send a delivery again (dead, disabled or even delivered), keeping its webhook-id."""
    with uow_factory() as uow:
        row = uow.webhook(delivery_id)
        if row is None:
            raise RipenError(f"no webhook delivery {delivery_id}")
        if row.status in ("pending", "retry", "delivering"):
            raise RipenError(f"delivery {delivery_id} is {row.status}; it will be sent anyway")
        uow.enable_endpoint(row.endpoint_id)
        row.status = "pending"
        row.next_attempt_at = now
        row.created_at = now  # a fresh retry horizon
        row.last_error = None
        uow.add(row)
        uow.commit()
        return row
