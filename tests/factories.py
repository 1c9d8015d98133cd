"""Test data in one place: configuration trees, leads and enrollments."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from engine.store.tables import Enrollment, Lead
from engine.store.uow import UnitOfWork

REPO = Path(__file__).resolve().parents[1]
MINIMAL = REPO / "tests" / "fixtures" / "minimal"

#: file → list of (old, new) text replacements, or None to delete the file.
Edits = Mapping[str, Sequence[tuple[str, str]] | None]


def example_tree(root: Path) -> Path:
    """A copy of the example configuration (config/, content/, templates/) at ``root``, for
    a test to edit."""
    for folder in ("config", "content", "templates"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def config_tree(target: Path, edits: Edits | None = None, *, source: Path = MINIMAL) -> Path:
    """Copy a configuration tree to ``target`` and apply ``edits``; each edit must match."""
    shutil.copytree(source, target)
    for relative, replacements in (edits or {}).items():
        path = target / relative
        if replacements is None:
            path.unlink()
            continue
        text = path.read_text(encoding="utf-8")
        for old, new in replacements:
            if old == "REPLACE_ALL":
                text = new
                continue
            assert old in text, f"edit does not apply to {relative}: {old!r}"
            text = text.replace(old, new, 1)
        path.write_text(text, encoding="utf-8")
    return target


NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def lead(**fields: object) -> Lead:
    values: dict[str, object] = {
        "public_id": secrets.token_urlsafe(16),
        "email": f"{secrets.token_hex(4)}@example.com",
        "status": "confirmed",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Lead(**values)


def saved_leads(engine: Engine, count: int, *, prefix: str = "lead",
                **fields: object) -> list[int]:
    """``count`` confirmed leads (with ``fields`` on each) committed to the database; their
    ids, in order."""
    with UnitOfWork(engine) as uow:
        people = [lead(email=f"{prefix}{n}@example.com", **fields) for n in range(count)]
        uow.add(*people)
        uow.commit()
        return [p.id for p in people if p.id is not None]


def enrollment(lead_id: int, **fields: object) -> Enrollment:
    values: dict[str, object] = {
        "lead_id": lead_id,
        "journey_id": "monika-marketing",
        "journey_version": "df64ac446936",
        "stage": "INF",
        "step_id": "inf-intro",
        "due_at": NOW,
        "stage_entered_at": NOW,
        "started_at": NOW,
    }
    values.update(fields)
    return Enrollment(**values)
