"""The content catalog (Content-Bausteine; seed 001, Learning 4)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AnyHttpUrl, Field, field_validator

from engine.config.types import ContentType, Frozen, Id, Language
from engine.stages import JourneyStage


class ContentItem(Frozen):
    """One piece of content, tagged with the personas and stages it serves."""

    id: Id
    title: str = Field(min_length=1)
    type: ContentType
    personas: list[Id] | Literal["all"] = Field(
        description='persona ids, or "all": every persona, the ones added later too')
    stages: list[JourneyStage] = Field(min_length=1)
    url: AnyHttpUrl
    summary: str = ""
    language: Language = "de"
    fast_lane: bool = Field(
        default=False, description="taking this item hands the lead to sales at once"
    )
    points: int = Field(default=0, ge=0, le=100, description="implicit score on consumption")
    published: date | None = None

    @field_validator("personas")
    @classmethod
    def _some_personas(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not value:
            raise ValueError('name at least one persona, or write "all"')
        return value


class ContentCatalog(Frozen):
    """A file of content items (``content/*.yaml``)."""

    items: list[ContentItem] = Field(min_length=1)
