"""Durations as marketers write them in YAML: ``90m``, ``12h``, ``3d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

DURATION_HINT = "write durations like 3d, 12h, 90m or 2w"


def parse_duration(text: str) -> timedelta:
    """Parse ``3d`` and friends; raise ``ValueError`` for anything else (or zero)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f'"{text}" is not a duration')
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        raise ValueError(f'"{text}" is zero; a duration must be positive')
    return timedelta(**{_UNITS[unit]: amount})


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of ``value`` in the YAML syntax."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"
