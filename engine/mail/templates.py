"""The e-mail templates in ``templates/email/``: a sandboxed, strict Jinja environment.

A template NAME is a pair of files, ``NAME.html.j2`` and ``NAME.txt.j2``. Templates under
``transactional/`` (double opt-in, notifications) carry no advertising; every other template
is a marketing template and must show an unsubscribe link and the sender imprint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import Problem

PARTS = ("html", "txt")
SUFFIX = ".j2"
TRANSACTIONAL = "transactional/"

#: Variables every marketing mail must show, and how to fix a template that lacks one.
REQUIRED_IN_MARKETING = {
    "unsubscribe_url": "unsubscribe link",
    "imprint": "sender imprint (Impressum)",
}


def make_environment(folder: Path) -> SandboxedEnvironment:
    """The one environment for marketer-written templates: sandboxed, autoescaped, strict."""
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # compiled once per process; `{% extends %}` must not stat files
    )


@dataclass(frozen=True)
class TemplateCatalog:
    """What is in the templates folder, and the checks the compiler runs on it."""

    folder: Path
    display_prefix: str

    def names(self) -> set[str]:
        """Every template name that has at least one part."""
        found = set()
        for file in self.folder.rglob(f"*{SUFFIX}"):
            relative = file.relative_to(self.folder).as_posix()
            for part in PARTS:
                ending = f".{part}{SUFFIX}"
                if relative.endswith(ending):
                    found.add(relative.removesuffix(ending))
        return found

    def file(self, name: str, part: str) -> str:
        return f"{name}.{part}{SUFFIX}"

    def display(self, relative: str) -> str:
        return f"{self.display_prefix}/{relative}"

    def syntax_problems(self) -> Iterator[Problem]:
        """Every template file must parse."""
        env = make_environment(self.folder)
        for file in sorted(self.folder.rglob(f"*{SUFFIX}")):
            relative = file.relative_to(self.folder).as_posix()
            try:
                env.parse(file.read_text(encoding="utf-8"), relative, relative)
            except TemplateSyntaxError as exc:
                yield Problem(self.display(relative), exc.lineno or 1, 1,
                              f"template syntax error: {exc.message}",
                              "check the {{ … }} and {% … %} tags around this line")
            except UnicodeDecodeError:
                yield Problem(self.display(relative), 1, 1, "file is not UTF-8 text",
                              "save the file as UTF-8")

    def render_problems(self, name: str, context: dict[str, object]) -> Iterator[Problem]:
        """Render both parts with ``context``; an undefined variable is a located problem."""
        from engine.mail.context import VARIABLES

        env = make_environment(self.folder)
        for part in PARTS:
            relative = self.file(name, part)
            try:
                env.get_template(relative).render(context)
            except UndefinedError as exc:
                file, line = relative, 1
                tb = exc.__traceback__
                while tb is not None:  # Jinja rewrites frames to template files and lines
                    name_in_frame = tb.tb_frame.f_code.co_filename
                    if name_in_frame.endswith(SUFFIX):
                        try:
                            file = Path(name_in_frame).resolve().relative_to(
                                self.folder.resolve()).as_posix()
                        except ValueError:
                            file = relative
                        line = tb.tb_lineno
                    tb = tb.tb_next
                detail = (exc.message or "").replace("'dict object' has no attribute",
                                                     "no such field")
                yield Problem(self.display(file), line, 1, f"undefined variable: {detail}",
                              "a marketing mail has: " + ", ".join(VARIABLES))
            except (TemplateNotFound, TemplateSyntaxError, OSError):
                continue  # reported as missing or broken elsewhere

    def missing_parts(self, name: str) -> list[str]:
        return [part for part in PARTS if not (self.folder / self.file(name, part)).is_file()]

    def marketing_problems(self, name: str) -> Iterator[Problem]:
        """A marketing template (with the templates it extends/includes) shows both musts."""
        if name.startswith(TRANSACTIONAL):
            return
        env = make_environment(self.folder)
        for part in PARTS:
            relative = self.file(name, part)
            if not (self.folder / relative).is_file():
                continue
            used = self._variables(env, relative, set())
            if used is None:
                continue  # does not parse: reported by syntax_problems
            for variable, what in REQUIRED_IN_MARKETING.items():
                if variable not in used:
                    yield Problem(
                        self.display(relative), 1, 1,
                        f"marketing template has no {what}",
                        f"show {{{{ {variable} }}}} in it, or extend base.{part}.j2 which does",
                    )

    def _variables(
        self, env: SandboxedEnvironment, relative: str, seen: set[str]
    ) -> set[str] | None:
        """Variables used by the template and everything it extends or includes.

        ``None`` when one of them cannot be read or parsed (reported elsewhere).
        """
        if relative in seen:
            return set()
        seen.add(relative)
        assert env.loader is not None
        try:
            source, _, _ = env.loader.get_source(env, relative)
            ast = env.parse(source)
        except (OSError, UnicodeDecodeError, TemplateNotFound, TemplateSyntaxError):
            return None
        used = set(meta.find_undeclared_variables(ast))
        for child in meta.find_referenced_templates(ast):
            if child is not None:
                more = self._variables(env, child, seen)
                if more is None:
                    return None
                used |= more
        return used
