"""Rendering mail templates: one compiled environment per process, strict variables.

Mail clients (Gmail, Outlook) drop ``<style>`` blocks, so a marketer's CSS is inlined into
``style`` attributes after rendering; ``@media`` rules stay in a ``<style>`` block for the
clients that honour them. Remote stylesheets are never fetched (nothing calls out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Template

from engine.mail.message import check_header
from engine.mail.templates import SUFFIX, make_environment

_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_link_tags=False,
                                 keep_at_rules=True)
_STYLE_BLOCK = re.compile(r"<style", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]+")


def inline_css(html: str) -> str:
    """Move ``<style>`` rules into ``style`` attributes (HTML without a style block: as is)."""
    if _STYLE_BLOCK.search(html) is None:
        return html
    return str(_INLINER.inline(html))


class Renderer:
    """Renders with templates compiled once per process (the configuration is compiled at
    start as well: a changed template takes effect with the next start)."""

    def __init__(self, folder: Path) -> None:
        self._env = make_environment(folder)
        self._compiled: dict[str, tuple[Template, Template]] = {}
        self._lines: dict[str, Template] = {}

    def render_line(self, source: str, context: Mapping[str, Any], *,
                    limit: int = 300) -> str:
        """A one-line template such as a step's subject, compiled once per process, rendered
        as plain text: whitespace runs become one space; a line break or more than ``limit``
        characters (the outbox column) raise, so the one lead it happens for is held back."""
        template = self._lines.get(source)
        if template is None:
            template = self._lines[source] = self._env.from_string(source)
        text = _SPACES.sub(" ", template.render(context)).strip()
        check_header("subject", text)
        if len(text) > limit:
            raise ValueError(f"the subject has {len(text)} characters, at most {limit}")
        return text

    def render(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """(html, text) of template ``name``; a missing variable raises (StrictUndefined)."""
        pair = self._compiled.get(name)
        if pair is None:
            pair = (self._env.get_template(f"{name}.html{SUFFIX}"),
                    self._env.get_template(f"{name}.txt{SUFFIX}"))
            self._compiled[name] = pair
        return inline_css(pair[0].render(context)), pair[1].render(context)
