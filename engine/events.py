"""Events as the engine passes them around: one to record, and one as recorded.

Ingestion handles thousands of events per batch; a recorded event is a plain frozen value
(its row is written in bulk), not an ORM object.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class NewEvent:
    """An event to record (``JourneyRuntime.record_events``)."""

    lead_id: int
    type: str
    content_id: str | None = None
    occurred_at: datetime | None = None
    source: str | None = None
    data: dict[str, Any] | None = None
    is_scanner: bool = False
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored (``id`` is its row)."""

    id: int
    lead_id: int
    type: str
    content_id: str | None
    stage: str | None
    is_scanner: bool
    data: dict[str, Any]
    occurred_at: datetime
