"""A token bucket in front of a mail transport: at most ``per_second`` mails, ``burst`` at once.

Relays throttle or block senders that exceed their limits (and then answer 4xx, which only
delays mail further), so the sender paces itself. The bucket measures real elapsed time
(``monotonic``) and waits with ``sleep``; both are injected so tests need not wait. One
bucket exists per relay in a process; with several sending processes, divide the limit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.adapters.mailers import BeforeData, Mailer, Result, Submission


@dataclass
class TokenBucket:
    per_second: float
    burst: int
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]
    _tokens: float = field(init=False)
    _at: float = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs per_second > 0 and burst >= 1")
        self._tokens = float(self.burst)
        self._at = self.monotonic()

    def take(self) -> float:
        """Wait until one token is free and take it; returns the seconds waited."""
        with self._lock:
            now = self.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_second)
            self._at = now
            wait = 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.per_second
            self._tokens -= 1.0  # may go negative: the wait below pays it back
            if wait > 0:
                self.sleep(wait)
            return wait


class RateLimitedMailer:
    """Any transport, paced by a bucket: a round waits for a token per mail before its
    envelopes go out."""

    def __init__(self, mailer: Mailer, bucket: TokenBucket) -> None:
        self.inner = mailer
        self.bucket = bucket
        self.name = mailer.name
        self.lanes = mailer.lanes
        self.waited = 0.0

    def send_round(self, mails: Sequence[Submission],
                   before_data: BeforeData) -> list[Result | None]:
        for _ in mails:
            self.waited += self.bucket.take()
        return self.inner.send_round(mails, before_data)

    def close(self) -> None:
        self.inner.close()
