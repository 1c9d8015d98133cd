"""A real HTTP server on loopback playing a CRM's webhook endpoint, with scripted answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook
from svix.webhooks import Webhook as SvixWebhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.requests: list[Received] = []
        self.script: list[Answer] = []  # answers for the next requests; then 204
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ripen"

    def verified(self) -> list[Any]:
        """Every request verified as a CRM would: with the standardwebhooks library and with
        Svix's SDK (each raises on a bad signature or a stale timestamp)."""
        hook, svix = Webhook(self.secret), SvixWebhook(self.secret)
        for request in self.requests:
            svix.verify(request.body, dict(request.headers))
        return [hook.verify(r.body, r.headers) for r in self.requests]

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests]


@contextmanager
def running(secret: str, port: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            answer = receiver.script.pop(0) if receiver.script else Answer()
            receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()},
                                              body, time.monotonic()))
            if answer.delay:
                time.sleep(answer.delay)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting (timeout test)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
