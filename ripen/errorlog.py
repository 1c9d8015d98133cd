"""The error log: a traceback goes to a file; the console gets one line that points at it."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_FOLDER = Path("var") / "log"


def record(text: str, folder: Path = DEFAULT_FOLDER) -> Path:
    """Append ``text`` (a traceback) to ``folder/ripen-error.log``, or to the temporary
    folder when that cannot be written; return the file's path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir())
    path = folder / "ripen-error.log"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"--- {datetime.now(UTC).isoformat()}\n{text}\n")
    return path


def summary(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, shortened to ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
