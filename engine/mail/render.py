"""Rendering mail templates: one compiled environment per process, strict variables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.mail.templates import SUFFIX, make_environment


class Renderer:
    def __init__(self, folder: Path) -> None:
        self._env = make_environment(folder)

    def render(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """(html, text) of template ``name``; a missing variable raises (StrictUndefined)."""
        html = self._env.get_template(f"{name}.html{SUFFIX}").render(context)
        text = self._env.get_template(f"{name}.txt{SUFFIX}").render(context)
        return html, text
