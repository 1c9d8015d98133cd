"""The relay's token bucket, on an injected monotonic clock (no real waiting)."""

from __future__ import annotations

import pytest

from engine.adapters.ratelimit import TokenBucket


class Stopwatch:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_goes_at_once_then_the_rate_paces() -> None:
    watch = Stopwatch()
    bucket = TokenBucket(5.0, 2, watch.monotonic, watch.sleep)
    for _ in range(10):
        bucket.take()
    assert len(watch.slept) == 8  # the first two took the burst
    assert sum(watch.slept) == pytest.approx((10 - 2) / 5.0)
    assert watch.now == pytest.approx(1.6)


def test_idle_time_refills_up_to_the_burst_only() -> None:
    watch = Stopwatch()
    bucket = TokenBucket(10.0, 3, watch.monotonic, watch.sleep)
    for _ in range(3):
        bucket.take()
    watch.now += 60.0  # an idle minute buys 3 tokens, not 600
    for _ in range(3):
        assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(0.1)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_bucket_that_could_never_send_is_refused(rate: float, burst: int) -> None:
    watch = Stopwatch()
    with pytest.raises(ValueError, match="per_second > 0 and burst >= 1"):
        TokenBucket(rate, burst, watch.monotonic, watch.sleep)
