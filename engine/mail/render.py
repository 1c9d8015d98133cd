"""Rendering mail templates: one compiled environment per process, strict variables.

Mail clients (Gmail, Outlook) drop ``<style>`` blocks, so a marketer's CSS is inlined into
``style`` attributes after rendering; ``@media`` rules stay in a ``<style>`` block for the
clients that honour them. Remote stylesheets are never fetched (nothing calls out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
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
_STYLE_CONTENT = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


@lru_cache(maxsize=256)  # the templates' style blocks, not one per mail
def only_at_rules(css: str) -> bool:
    """Whether a style block holds nothing but @-rules (``@media`` …): nothing to inline."""
    depth, in_rule = 0, False
    for char in _CSS_COMMENT.sub("", css):
        if depth == 0 and not in_rule:
            if char.isspace():
                continue
            if char != "@":
                return False  # a plain rule (``p { … }``) at the top level
            in_rule = True
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth <= 0:
                depth, in_rule = 0, False
        elif char == ";" and depth == 0:
            in_rule = False  # ``@import …;``, ``@charset …;``
    return True


def inline_css(html: str) -> str:
    """Move ``<style>`` rules into ``style`` attributes. HTML without a style block, or whose
    style blocks hold only @-rules (the shipped templates: their CSS is written inline and
    only the dark-mode ``@media`` rules are in a block), is returned as is: parsing and
    writing the whole mail again (~160 µs) would change nothing a mail client sees."""
    opened = len(_STYLE_BLOCK.findall(html))
    if not opened:
        return html
    blocks = _STYLE_CONTENT.findall(html)
    if len(blocks) == opened and all(only_at_rules(css) for css in blocks):
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
