"""The e-mail templates in ``templates/email/``: a sandboxed, strict Jinja environment.

A template NAME is a pair of files, ``NAME.html.j2`` and ``NAME.txt.j2``. Templates under
``transactional/`` (double opt-in, notifications) carry no advertising; every other template
is a marketing template and must show an unsubscribe link and the sender imprint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import Problem
from engine.mail.wrap import wordwrap

PARTS = ("html", "txt")
SUFFIX = ".j2"
TRANSACTIONAL = "transactional/"

#: Variables every marketing mail must show, and how to fix a template that lacks one.
REQUIRED_IN_MARKETING = {
    "unsubscribe_url": "unsubscribe link",
    "imprint": "sender imprint (Impressum)",
}


def make_environment(folder: Path) -> SandboxedEnvironment:
    """The one environment for marketer-written templates: sandboxed, autoescaped, strict;
    ``wordwrap`` is Jinja's, made cheap for lines that already fit (engine/mail/wrap.py)."""
    environment = SandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # compiled once per process; `{% extends %}` must not stat files
    )
    environment.filters["wordwrap"] = wordwrap
    return environment


@dataclass(frozen=True)
class Misuse:
    """A variable, field, filter or test a template uses that the mail will not have."""

    line: int
    message: str
    hint: str


#: What a field of a kind other than text, a list or a record is, for its attributes.
_KINDS: dict[str, tuple[type, str]] = {"list": (list, "a list"), "time": (datetime, "a time"),
                                       "number": (int, "a number"), "flag": (bool, "yes or no")}


def misuses(ast: nodes.Template, schema: Mapping[str, Any], env: SandboxedEnvironment,
            optional: tuple[str, ...] = (), mail: str = "a marketing mail") -> list[Misuse]:
    """Every use in ``ast`` — in every branch, taken or not — of a variable the schema does
    not have, a field its record does not have, an attribute text does not have, a field
    of an ``optional`` variable outside an ``{% if %}`` about it, or an unknown filter or
    test. A sample render sees one branch only; this sees them all."""
    found: list[Misuse] = []
    local = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    known = set(schema) | set(env.globals) | local | {"loop", "super", "self", "varargs",
                                                      "kwargs", "caller"}
    try:
        undeclared = meta.find_undeclared_variables(ast)
    except TemplateSyntaxError:  # an unknown filter or test: reported below, by name
        undeclared = set()
    for name in sorted(undeclared - known):
        line = next((n.lineno for n in ast.find_all(nodes.Name) if n.name == name), 1)
        found.append(Misuse(line, f"undefined variable: no variable '{name}'",
                            _suggest(name, schema, f"{mail} has")))
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        field = _field(node)
        path = _path(node.node, schema, local) if field is not None else None
        if field is None or path is None:
            continue
        where, kind = path
        if isinstance(kind, dict):
            if field not in kind:
                found.append(Misuse(node.lineno,
                                    f"undefined variable: {where} has no field '{field}'",
                                    _suggest(field, kind, f"{where} has")))
        elif isinstance(node, nodes.Getattr):
            of_kind, what = _KINDS.get(kind, (str, "text"))
            if not hasattr(of_kind, field):
                found.append(Misuse(node.lineno, f"undefined variable: {where} is {what}; it "
                                                 f"has no '{field}'",
                                    f"use {{{{ {where} }}}} as it is"))
    unguarded = _unguarded(ast, {n: schema[n] for n in optional
                                 if n in schema and n not in local}, frozenset())
    found += list({(m.line, m.message.split(",")[0]): m for m in unguarded}.values())
    for kind, names, registry in (("filter", nodes.Filter, env.filters),
                                  ("test", nodes.Test, env.tests)):
        for node in ast.find_all(names):
            if node.name not in registry:
                close = difflib.get_close_matches(node.name, list(registry), n=1)
                found.append(Misuse(node.lineno, f"unknown {kind} '{node.name}'",
                                    f"did you mean '{close[0]}'?" if close else
                                    f"see the Jinja {kind}s: " + ", ".join(sorted(registry))[:200]))
    return sorted(found, key=lambda m: m.line)


def _unguarded(node: nodes.Node, optional: Mapping[str, Any],
               guarded: frozenset[str]) -> list[Misuse]:
    """Fields read from an optional variable (``fast_lane_offer.title``) where no
    ``{% if fast_lane_offer %}``, ``… if fast_lane_offer else …`` or ``| default`` guards
    them: the mail fails for every lead of a step without it."""
    if not optional:
        return []
    found: list[Misuse] = []
    if isinstance(node, nodes.If | nodes.CondExpr):
        names = guarded | {n.name for n in node.test.find_all(nodes.Name)}
        if isinstance(node.test, nodes.Name):
            names |= {node.test.name}
        found += _unguarded(node.test, optional, names)
        body = node.body if isinstance(node, nodes.If) else [node.expr1]
        rest = [*node.elif_, *node.else_] if isinstance(node, nodes.If) else \
            [node.expr2] if node.expr2 is not None else []
        for child in body:
            found += _unguarded(child, optional, names)
        for child in rest:
            found += _unguarded(child, optional, guarded)
        return found
    if isinstance(node, nodes.Filter) and node.name in ("default", "d"):
        return found  # {{ fast_lane_offer.title | default("") }} is guarded
    if isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name) \
            and node.node.name in optional and node.node.name not in guarded \
            and _field(node) in optional[node.node.name]:  # (an unknown field: reported)
        name = node.node.name
        return [Misuse(node.lineno, f"{name} may be empty, and {name}.{_field(node)} then "
                                    "fails the mail",
                       f"guard it: {{% if {name} %}}…{{% endif %}}")]
    for child in node.iter_child_nodes():
        found += _unguarded(child, optional, guarded)
    return found


def _path(node: nodes.Node, schema: Mapping[str, Any],
          local: set[str]) -> tuple[str, Any] | None:
    """Where an expression like ``lead`` or ``persona.pains`` points in the schema (its
    dotted name and kind), or None when it is a local name or cannot be followed."""
    if isinstance(node, nodes.Name):
        if node.name in local or node.name not in schema:
            return None
        return node.name, schema[node.name]
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        field = _field(node)
        parent = _path(node.node, schema, local)
        if parent is None or not isinstance(field, str) or not isinstance(parent[1], dict) \
                or field not in parent[1]:
            return None
        return f"{parent[0]}.{field}", parent[1][field]
    return None


def _field(node: nodes.Getattr | nodes.Getitem) -> str | None:
    """The field ``lead.first_name`` or ``lead["first_name"]`` reads (None: computed)."""
    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _suggest(name: str, known: Mapping[str, Any], intro: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    listed = f"{intro}: " + ", ".join(known)
    return f"did you mean '{close[0]}'? {listed}" if close else listed


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

    def misuse_problems(self, name: str, schema: Mapping[str, Any],
                        optional: tuple[str, ...] = (),
                        mail: str = "a marketing mail") -> list[Problem]:
        """Both parts of template ``name`` and everything they extend or include, checked in
        every branch against the variables the mail will have (``misuses``)."""
        env = make_environment(self.folder)
        problems: list[Problem] = []
        seen: set[str] = set()
        todo = [self.file(name, part) for part in PARTS]
        while todo:
            relative = todo.pop(0)
            if relative in seen:
                continue
            seen.add(relative)
            assert env.loader is not None
            try:
                source, _, _ = env.loader.get_source(env, relative)
                ast = env.parse(source)
            except (OSError, UnicodeDecodeError, TemplateNotFound, TemplateSyntaxError):
                continue  # reported as missing or broken elsewhere
            problems += [Problem(self.display(relative), m.line, 1, m.message, m.hint)
                         for m in misuses(ast, schema, env, optional, mail)]
            todo += [child for child in meta.find_referenced_templates(ast)
                     if child is not None]
        return problems

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
            used = set(meta.find_undeclared_variables(ast))
        except (OSError, UnicodeDecodeError, TemplateNotFound, TemplateSyntaxError):
            return None  # unreadable, broken or an unknown filter: reported elsewhere
        for child in meta.find_referenced_templates(ast):
            if child is not None:
                more = self._variables(env, child, seen)
                if more is None:
                    return None
                used |= more
        return used
