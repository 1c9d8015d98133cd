"""Rendering mail templates: one compiled environment per process, strict variables.

Mail clients (Gmail, Outlook) drop ``<style>`` blocks, so a marketer's CSS is inlined into
``style`` attributes after rendering; ``@media`` rules stay in a ``<style>`` block for the
clients that honour them. Remote stylesheets are never fetched (nothing calls out).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import css_inline

from engine.mail.templates import SUFFIX, make_environment

_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_link_tags=False,
                                 keep_at_rules=True)


def inline_css(html: str) -> str:
    """Move ``<style>`` rules into ``style`` attributes (HTML without a style block: as is)."""
    if "<style" not in html.lower():
        return html
    return str(_INLINER.inline(html))


class Renderer:
    def __init__(self, folder: Path) -> None:
        self._env = make_environment(folder)

    def render(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """(html, text) of template ``name``; a missing variable raises (StrictUndefined)."""
        html = self._env.get_template(f"{name}.html{SUFFIX}").render(context)
        text = self._env.get_template(f"{name}.txt{SUFFIX}").render(context)
        return inline_css(html), text
