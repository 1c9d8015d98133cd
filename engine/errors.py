"""The errors ripen shows to people: one base class, and located configuration problems."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class RipenError(Exception):
    """A user-facing error: the edges print it plainly (CLI exit 1, HTTP 4xx)."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a configuration file, with where it is and how to fix it."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None

    def format(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(RipenError):
    """The configuration is broken; carries every problem found, sorted by location."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: Sequence[Problem] = sorted(set(problems))
        super().__init__(self.format())

    def format(self) -> str:
        return "\n".join(problem.format() for problem in self.problems)
