"""The content catalog (Content-Bausteine; seed 001, Learning 4)."""

from __future__ import annotations

from datetime import date

from pydantic import AnyHttpUrl, Field

from engine.config.types import ContentType, Frozen, Id, Language
from engine.stages import JourneyStage


class ContentItem(Frozen):
    """One piece of content, tagged with the personas and stages it serves."""

    id: Id
    title: str = Field(min_length=1)
    type: ContentType
    personas: list[Id] = Field(min_length=1)
    stages: list[JourneyStage] = Field(min_length=1)
    url: AnyHttpUrl
    summary: str = ""
    language: Language = "de"
    fast_lane: bool = Field(
        default=False, description="taking this item hands the lead to sales at once"
    )
    points: int = Field(default=0, ge=0, le=100, description="implicit score on consumption")
    published: date | None = None


class ContentCatalog(Frozen):
    """A file of content items (``content/*.yaml``)."""

    items: list[ContentItem] = Field(min_length=1)
