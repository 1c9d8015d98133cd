"""The boundaries of STYLE.md, checked on the source: a cheap import-linter."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.factories import REPO

EDGE_LIBRARIES = {"prefect", "fastapi", "starlette", "typer", "click", "apscheduler", "uvicorn"}
SQL_LIBRARIES = {"sqlalchemy", "sqlmodel", "alembic", "psycopg"}
#: The composition root names the engine type it builds; it runs no SQL itself.
SQL_ALLOWED_OUTSIDE_STORE = {"engine/bootstrap.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _engine_files() -> list[Path]:
    return sorted((REPO / "engine").rglob("*.py"))


def test_engine_imports_no_edge_library() -> None:
    """engine/ imports neither Prefect, FastAPI, Typer nor APScheduler."""
    offenders = {
        f"{path.relative_to(REPO)}: {', '.join(sorted(_imports(path) & EDGE_LIBRARIES))}"
        for path in _engine_files()
        if _imports(path) & EDGE_LIBRARIES
    }
    assert not offenders


def test_only_the_store_touches_sql() -> None:
    """Only engine/store/ uses SQLModel/SQLAlchemy."""
    offenders = set()
    for path in _engine_files():
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith("engine/store/") or relative in SQL_ALLOWED_OUTSIDE_STORE:
            continue
        if _imports(path) & SQL_LIBRARIES:
            offenders.add(relative)
    assert not offenders


def test_the_checker_sees_imports() -> None:
    """The scan itself works: it finds the imports this package is known to have."""
    assert "prefect" in _imports(REPO / "flows" / "tick.py")
    assert "sqlmodel" in _imports(REPO / "engine" / "store" / "tables.py")
