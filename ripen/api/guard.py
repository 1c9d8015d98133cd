"""The API's front door, before any route reads a byte of the body.

- ``/api/…``, ``/reports/…`` and ``/metrics`` need an API key: a request without a valid
  one is answered 401 before its body is read, so an anonymous client cannot make ripen
  parse (or even receive) a large body, nor learn the schema from a 422.
- Every route has a body limit (``limit_for``): a larger ``Content-Length`` is answered 413
  at once; a body sent without one (chunked) is read only up to the limit.
- ``HEAD`` is answered for every ``GET`` route (link checkers use it): as the ``GET`` would
  be, without the body; a route with a side effect (a click, an open) finds ``HEAD`` in
  ``scope[HEAD]`` and records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from ripen.api.edge import valid_api_key

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KIB = 1024
#: Bytes a request body may have: the public form and most of the API need little; the
#: batch endpoints carry up to 1,000 items.
DEFAULT_LIMIT = 64 * KIB
LIMITS = {"/api/events/batch": 2048 * KIB, "/api/bounces": 2048 * KIB}
PROTECTED = ("/api/", "/reports/", "/metrics")
#: Set in the scope of a HEAD request answered by its GET route.
HEAD = "ripen.head"


def limit_for(path: str) -> int:
    return LIMITS.get(path, DEFAULT_LIMIT)


class Guard:
    """ASGI middleware: the API key, then the body limit, then the app."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app = app
        self.keys = list(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "HEAD":
            scope = {**scope, "method": "GET", HEAD: True}
            send = _headers_only(send)
        path: str = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if path.startswith(PROTECTED) and not valid_api_key(
                headers.get("authorization", ""), self.keys):
            await _answer(send, 401, "a valid API key is required",
                          [(b"www-authenticate", b"Bearer")])
            return
        limit = limit_for(path)
        declared = headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > limit):
            await _answer(send, 413, f"the request body is larger than {limit // KIB} KiB")
            return
        body = bytearray()
        more = True
        while more:  # read up to the limit; a chunked body that goes on past it is refused
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _answer(send, 413, f"the request body is larger than {limit // KIB} KiB")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _headers_only(send: Send) -> Send:
    """A ``send`` that passes the response's status and headers and drops its body."""
    async def headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})
            return
        await send(message)
    return headers_only


async def _answer(send: Send, status: int, error: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})
