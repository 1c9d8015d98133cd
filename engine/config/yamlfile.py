"""Read YAML with the line and column of every node, so errors can point at them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.errors import Problem

Loc = Sequence[str | int]


@dataclass(frozen=True)
class YamlDocument:
    """One parsed YAML file: its display path and its data with positions attached."""

    path: str
    data: Any

    def locate(self, loc: Loc, *, at_key: bool = False) -> tuple[int, int, tuple[str | int, ...]]:
        """Return (line, column, path) of ``loc``; 1-based, nearest existing node.

        Parts of ``loc`` that do not exist in the data (pydantic's union tags) are skipped,
        except a missing last part, which names the missing key at its parent's position.
        With ``at_key`` the position of the last key itself is returned instead of its value.
        """
        node = self.data
        line, column = _start(node)
        path: list[str | int] = []
        for index, part in enumerate(loc):
            last = index == len(loc) - 1
            if isinstance(node, CommentedMap) and part in node:
                line, column = node.lc.key(part) if (last and at_key) else _value_pos(node, part)
                node = node[part]
                path.append(part)
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, column = node.lc.item(part)
                node = node[part]
                path.append(part)
            elif last:
                path.append(part)
        return line + 1, column + 1, tuple(path)

    def problem(
        self, loc: Loc, message: str, hint: str | None = None, *, at_key: bool = False
    ) -> Problem:
        """A problem located at ``loc``, its message prefixed with the dotted path."""
        line, column, path = self.locate(loc, at_key=at_key)
        where = dotted(path)
        return Problem(self.path, line, column, f"{where}: {message}" if where else message, hint)


def _start(node: Any) -> tuple[int, int]:
    if isinstance(node, CommentedMap | CommentedSeq):
        return node.lc.line, node.lc.col
    return 0, 0


def _value_pos(node: CommentedMap, key: Any) -> tuple[int, int]:
    value = node[key]
    if isinstance(value, CommentedMap | CommentedSeq) and not _is_flow(value):
        # A block mapping/sequence "starts" at its first child; point at its key instead.
        line, column = node.lc.key(key)
        return line, column
    line, column = node.lc.value(key)
    return line, column


def _is_flow(node: CommentedMap | CommentedSeq) -> bool:
    return bool(node.fa.flow_style())


def dotted(path: Loc) -> str:
    """``("stages", "INF", "steps", 2, "wait")`` → ``stages.INF.steps[2].wait``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def read_yaml(file: Path, display: str) -> YamlDocument | Problem:
    """Parse ``file``; a syntax error comes back as a located ``Problem``."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return Problem(display, 1, 1, f"file is not UTF-8 text ({exc.reason})",
                       "save the file as UTF-8")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = _yaml_message(exc)
        return Problem(display, line, column, message, _yaml_hint(message))
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors for text input
        return Problem(display, 1, 1, f"invalid YAML: {exc}")
    if data is None:
        return Problem(display, 1, 1, "the file is empty", "remove the file or fill it in")
    return YamlDocument(display, data)


def _yaml_message(exc: MarkedYAMLError) -> str:
    problem = (exc.problem or "invalid YAML").strip()
    if "found duplicate key" in problem:
        key = problem.split('"')[1] if '"' in problem else "?"
        return f'duplicate key "{key}"'
    context = (exc.context or "").strip()
    if context and context not in problem:
        return f"invalid YAML: {problem} ({context})"
    return f"invalid YAML: {problem}"


def _yaml_hint(message: str) -> str | None:
    if "duplicate key" in message:
        return "each key may appear once in a mapping; merge or rename the two entries"
    if "tab" in message or "'\\t'" in message:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in message:
        return 'quote values that contain ": " (e.g. title: "Leads: the guide")'
    if "could not find expected ':'" in message or "simple key" in message:
        return "every line in a mapping needs `key: value`; check indentation and quotes"
    return "check indentation and quoting around this position"
