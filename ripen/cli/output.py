"""What commands print: tables for people, one JSON document for scripts.

Every command that lists or shows something takes ``--json`` (:data:`JsonOption`) and then
prints exactly one JSON document on stdout (:func:`print_json`) — nothing else goes to
stdout, so ``ripen … --json | jq`` always parses. Errors still go to stderr with exit 1.

Tables (:func:`table`) fold long cells onto further lines instead of cutting them with "…",
so an id is never shortened on an 80-column terminal or in a pipe."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout instead of text (for scripts)"),
]


def jsonable(value: Any) -> Any:
    """Plain JSON values: times as ISO 8601, enums as their value, dataclasses as objects."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    raise TypeError(f"no JSON form for {type(value).__name__}")


def print_json(data: Any) -> None:
    """The command's whole output: one JSON document, UTF-8, indented."""
    sys.stdout.write(json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = (),
          numbers: bool = False, ids: tuple[str, ...] = ()) -> Table:
    """A table whose text cells wrap and fold (never "…"). ``right``: columns of numbers,
    kept on one line with their header; ``numbers``: every column but the first; ``ids``:
    columns of ids, kept whole while the other text columns have room to wrap."""
    result = Table(title=title, title_justify="left", box=box.SIMPLE)
    for index, name in enumerate(columns):
        number = name in right or (numbers and index > 0)
        result.add_column(name, overflow="fold", no_wrap=number or name in ids,
                          justify="right" if number else "left")
    return result
