"""Operator settings from ``RIPEN_*`` environment variables (separate from marketers' YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.errors import RipenError


class Settings(BaseSettings):
    """Where ripen keeps its data, how it sends mail and signs links."""

    model_config = SettingsConfigDict(env_prefix="RIPEN_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    home: Path = Field(default=Path("."), description="folder holding config/, content/, "
                       "templates/email/ (and var/ for the embedded default)")
    database_url: str = Field(default="", description="default: sqlite:///<home>/var/ripen.db")
    mail_url: str = Field(default="", description="smtp://user:pass@host:587 or "
                          "maildir:<path>; default: maildir:<home>/var/outbox")
    smtp_connections: int = Field(
        default=8, ge=1, le=64,
        description="connections a sender keeps open to the SMTP relay, one mail in flight "
                    "on each; a crashed sender leaves at most this many mails unknown")
    public_base_url: str = "http://localhost:8000"
    secret_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated; the first signs, all verify (rotation). Unset (only "
                    "in development): a key generated for this installation in var/",
    )
    tick_seconds: int = Field(default=60, ge=1, le=3600)
    maintenance_seconds: int = Field(default=900, ge=10, le=86400,
                                     description="DOI reminders and purge, outbox retries")
    lease_seconds: int = Field(
        default=300, ge=5, le=86400,
        description="how long a sender holds the mails and webhook deliveries it claimed; "
                    "a crashed worker's rows are taken over after this")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated keys for /api/* (Bearer)")
    check_deliverability: bool = Field(
        default=False, description="DNS check of sign-up addresses (needs network)")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object a line (ripen, uvicorn, Prefect)")

    @field_validator("secret_keys", "trusted_proxies", "api_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _no_defaults_in_production(self) -> Settings:
        if self.env == "production":
            if not self.secret_keys:
                raise ValueError("RIPEN_SECRET_KEYS must be set when RIPEN_ENV=production")
            if any(len(key) < 32 for key in self.secret_keys):
                raise ValueError("every key in RIPEN_SECRET_KEYS needs at least 32 characters")
        return self

    @property
    def var_dir(self) -> Path:
        return self.home / "var"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'ripen.db').as_posix()}"

    @property
    def effective_mail_url(self) -> str:
        return self.mail_url or f"maildir:{(self.var_dir / 'outbox').as_posix()}"


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value becomes a plain ``RipenError`` for the edges."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            name = "RIPEN_" + "_".join(str(p) for p in error["loc"]).upper() if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}" if name else message)
        raise RipenError("invalid settings:\n  " + "\n  ".join(lines)) from None
