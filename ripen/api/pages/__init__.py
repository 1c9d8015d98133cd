"""HTML pages of the API (sign-up form, confirmation, unsubscribe): plain and accessible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

_env = Environment(loader=FileSystemLoader(str(Path(__file__).parent)),
                   autoescape=select_autoescape(default=True), undefined=StrictUndefined)

#: Pages that carry a token in their URL must not leak it through the Referer header.
PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                   "X-Robots-Tag": "noindex"}


def render(name: str, **context: Any) -> str:
    return _env.get_template(name).render(**context)


def page(name: str, status: int = 200, headers: dict[str, str] | None = None,
         **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context), status_code=status,
                        headers={**PRIVATE_HEADERS, **(headers or {})})


def message(title: str, *paragraphs: str, status: int = 200, action: str | None = None,
            buttons: list[tuple[str, str, str, bool]] | None = None,
            fields: list[tuple[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    return page("message.html", status, headers, title=title, paragraphs=paragraphs,
                action=action, buttons=buttons or [], fields=fields or [])
