"""Who marketing and transactional mail comes from (``config/mail.yaml``)."""

from __future__ import annotations

from pydantic import EmailStr, Field

from engine.config.types import Frozen, HeaderText


class Sender(Frozen):
    name: HeaderText = Field(min_length=1)
    address: EmailStr
    reply_to: EmailStr | None = None


class MailIdentity(Frozen):
    """The sender identity and the imprint (Impressum) every marketing mail shows."""

    sender: Sender
    imprint: str = Field(min_length=10, description="company, address, register, management")
    message_id_domain: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
        description="domain in Message-IDs, e.g. mail.example.com",
    )
