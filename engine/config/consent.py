"""Consent texts and double opt-in rules (``config/consent.yaml``; seed 002 §5.2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from engine.config.types import Duration, Frozen, HeaderText, Language, ripen_error

Purpose = Literal["email_marketing", "tracking", "phone"]


class Limit(Frozen):
    """At most ``max`` within ``per``."""

    max: int = Field(ge=1)
    per: Duration


class DoiRules(Frozen):
    """How double opt-in behaves: link lifetime, one reminder, purge, abuse limits."""

    link_valid_for: Duration = timedelta(days=7)
    reminder_after: Duration | None = Field(
        default=timedelta(days=3), description="one reminder at most; empty = none"
    )
    purge_after: Duration = Field(
        default=timedelta(days=14), description="unconfirmed sign-ups are deleted after this"
    )
    per_address: Limit = Limit(max=3, per=timedelta(hours=24))
    per_ip: Limit = Limit(max=30, per=timedelta(hours=1))
    subject: HeaderText = "Bitte bestätigen Sie Ihre Anmeldung"
    reminder_subject: HeaderText = "Erinnerung: Bitte bestätigen Sie Ihre Anmeldung"
    update_subject: HeaderText = Field(
        default="Bitte bestätigen Sie Ihre Angaben",
        description="the mail to a confirmed address that signed up again: its new details "
                    "wait for this confirmation")

    @model_validator(mode="after")
    def _ordered(self) -> DoiRules:
        if self.purge_after < self.link_valid_for:
            raise ripen_error(
                "purge_after is shorter than link_valid_for: sign-ups would vanish while "
                "their link still works",
                "make purge_after at least link_valid_for (e.g. 14d for a 7d link)",
            )
        if self.reminder_after is not None and self.reminder_after >= self.link_valid_for:
            raise ripen_error(
                "reminder_after is not before the link expires",
                "send the reminder while the link is valid, e.g. reminder_after: 3d",
            )
        return self


class ConsentText(Frozen):
    """The consent text exactly as shown, per purpose; a version is never edited later."""

    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=40)
    language: Language = "de"
    purposes: dict[Purpose, str] = Field(min_length=1)

    @model_validator(mode="after")
    def _email_purpose(self) -> ConsentText:
        if "email_marketing" not in self.purposes:
            raise ripen_error("a consent text needs an email_marketing purpose",
                              "add `email_marketing: <the text shown next to the checkbox>`")
        return self


class ConsentConfig(Frozen):
    """``config/consent.yaml``."""

    current: str = Field(description="version shown on the sign-up form")
    doi: DoiRules = DoiRules()
    texts: list[ConsentText] = Field(min_length=1)

    def text(self, version: str) -> ConsentText | None:
        return next((t for t in self.texts if t.version == version), None)
