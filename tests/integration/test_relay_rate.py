"""The relay's rate limit in front of a real SMTP server (aiosmtpd): paced, nothing lost."""

from __future__ import annotations

from engine.adapters.ratelimit import TokenBucket
from engine.bootstrap import Ripen
from tests.consent_helpers import client, form
from tests.integration.test_journeys import Smtp
from tests.unit.test_ratelimit import Stopwatch


def test_mail_to_the_relay_is_paced_by_the_bucket(ripen_app: Ripen, smtp: Smtp) -> None:
    """2 mails/s, burst 1: six sign-ups → 5 waits of 0.5 s (virtual), all six delivered."""
    sink, _ = smtp
    assert ripen_app.config.mail.rate_limit is not None  # the example config sets one
    assert ripen_app.relay_bucket is not None
    watch = Stopwatch()
    ripen_app.relay_bucket = TokenBucket(2.0, 1, watch.monotonic, watch.sleep)
    web = client(ripen_app)
    for number in range(6):
        web.post("/subscribe", data=form(f"paced{number}@example.com"))
    assert len(sink.messages) == 6
    assert watch.slept == [0.5] * 5
    assert ripen_app.mailer().name == "smtp"
    assert type(ripen_app.mailer()).__name__ == "RateLimitedMailer"
