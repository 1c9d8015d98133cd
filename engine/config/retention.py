"""How long ripen keeps what it no longer needs (``config/retention.yaml``; optional, these
defaults apply without it). The maintenance run purges each class after its period.

The defaults are periods a German B2B company can defend (Art. 5(1)(e) GDPR, storage
limitation): long enough for what each row is for — sending, reporting, proof — and no
longer. Unconfirmed sign-ups are purged after ``consent.yaml``'s ``doi.purge_after``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, ValidationInfo, field_validator

from engine.config.types import Duration, Frozen, ripen_error

#: The shortest period each class may have, and why (``ripen validate`` says it).
MINIMUM = {
    "mail_bodies": (timedelta(days=7), "a mail is retried for up to 3 days and settled by hand "
                                       "after a crash"),
    "click_links": (timedelta(days=30), "the links in a mail must work for at least a month"),
    "events": (timedelta(days=91), "the funnel report looks back 91 days by default"),
    "delivered_webhooks": (timedelta(days=7), "receivers may ask for a replay within a week"),
    "dead_webhooks": (timedelta(days=7), "an operator needs time to replay a dead delivery"),
    "erased_consent_proof": (timedelta(days=365), "a past consent may have to be proven in a "
                                                  "dispute after the erasure"),
    "run_records": (timedelta(days=1), "health and metrics read the last runs"),
}


class Retention(Frozen):
    """``config/retention.yaml``: how long each kind of row is kept."""

    mail_bodies: Duration = Field(
        default=timedelta(days=90),
        description="the rendered text and HTML of mails that ended (sent, failed, "
                    "suppressed); subject, status, Message-ID and dates stay")
    click_links: Duration = Field(
        default=timedelta(days=400),
        description="tracked links in mails; later a click shows a neutral page")
    events: Duration = Field(
        default=timedelta(days=730),
        description="clicks, visits, downloads …: engagement history and the funnel report; "
                    "the score ledger keeps its points")
    delivered_webhooks: Duration = Field(
        default=timedelta(days=90), description="payloads of delivered webhooks (for replay)")
    dead_webhooks: Duration = Field(
        default=timedelta(days=30), description="deliveries that gave up (dead, disabled)")
    erased_consent_proof: Duration = Field(
        default=timedelta(days=3 * 365),
        description="the pseudonymised consent ledger of an erased person, kept as proof of a "
                    "lawful past consent (§ 195 BGB: three years)")
    run_records: Duration = Field(default=timedelta(days=30),
                                  description="the record of tick and maintenance runs")

    @field_validator(*MINIMUM)
    @classmethod
    def _long_enough(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        least, why = MINIMUM[str(info.field_name)]
        if value < least:
            raise ripen_error(f"shorter than {least.days} days: {why}",
                              f"keep it at least {least.days}d")
        return value


__all__ = ["MINIMUM", "Retention"]
