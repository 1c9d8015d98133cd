"""JSON Schemas for every configuration file kind, so editors validate and autocomplete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.config.loader import FILE_KINDS

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


def json_schemas() -> dict[str, dict[str, Any]]:
    """File kind → JSON Schema (draft 2020-12)."""
    schemas = {}
    for kind, model in FILE_KINDS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
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
