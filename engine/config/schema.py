"""JSON Schemas for every configuration file kind, so editors validate and autocomplete."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from engine.config.loader import FILE_KINDS
from engine.config.types import DURATION_PATTERN
from engine.durations import format_duration

TITLES = {
    "persona": "ripen buyer persona (config/personas/*.yaml)",
    "content": "ripen content catalog (content/*.yaml)",
    "journey": "ripen journey (config/journeys/*.yaml)",
    "scoring": "ripen lead scoring (config/scoring.yaml)",
    "sla": "ripen marketing–sales SLA (config/sla.yaml)",
    "policy": "ripen send policy (config/policy.yaml)",
    "consent": "ripen consent texts and double opt-in (config/consent.yaml)",
    "mail": "ripen sender identity and imprint (config/mail.yaml)",
    "retention": "ripen retention periods (config/retention.yaml)",
}


def _durations_as_written(node: Any) -> None:
    """pydantic writes a duration's default as ISO 8601 ("P5D"), which the field's own
    pattern refuses: write it as a marketer does ("5d")."""
    if isinstance(node, dict):
        default = node.get("default")
        if node.get("pattern") == DURATION_PATTERN and isinstance(default, str) \
                and default.startswith("P"):
            node["default"] = format_duration(TypeAdapter(timedelta).validate_python(default))
        for value in node.values():
            _durations_as_written(value)
    elif isinstance(node, list):
        for value in node:
            _durations_as_written(value)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File kind → JSON Schema (draft 2020-12)."""
    schemas = {}
    for kind, model in FILE_KINDS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        _durations_as_written(schema)
        schemas[kind] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://ripen.dev/schemas/{kind}.schema.json",
            **schema,
            "title": TITLES[kind],
        }
    return schemas


def schema_file_name(kind: str) -> str:
    return f"{kind}.schema.json"


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, schema in json_schemas().items():
        path = folder / schema_file_name(kind)
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
