"""Who marketing and transactional mail comes from (``config/mail.yaml``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import EmailStr, Field

from engine.config.types import Duration, Frozen, HeaderText


class Sender(Frozen):
    name: HeaderText = Field(min_length=1)
    address: EmailStr
    reply_to: EmailStr | None = None


class Bounces(Frozen):
    """When an address stops receiving mail (hard bounces and complaints: at once)."""

    soft_limit: int = Field(default=3, ge=1, le=50,
                            description="soft bounces within `window` that suppress the address")
    window: Duration = Field(default=timedelta(days=30), description="e.g. 30d")


class RateLimit(Frozen):
    """A token bucket for the relay in RIPEN_MAIL_URL (per sending process)."""

    per_second: float = Field(gt=0, le=100_000, description="mails per second, sustained")
    burst: int = Field(default=1, ge=1, le=100_000, description="mails allowed at once")


class MailIdentity(Frozen):
    """The sender identity and the imprint (Impressum) every marketing mail shows."""

    sender: Sender
    imprint: str = Field(min_length=10, description="company, address, register, management")
    message_id_domain: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
        description="domain in Message-IDs, e.g. mail.example.com",
    )
    bounces: Bounces = Bounces()
    rate_limit: RateLimit | None = Field(
        default=None, description="per-relay limit; none means as fast as the relay accepts")
