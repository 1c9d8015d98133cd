"""Stage 1: read every configuration file and check its shape (pydantic, per file)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from engine.config.consent import ConsentConfig
from engine.config.content import ContentCatalog
from engine.config.journey import STEP_ACTIONS, Journey
from engine.config.mail import MailIdentity
from engine.config.persona import Persona
from engine.config.policy import Policy
from engine.config.retention import Retention
from engine.config.scoring import Scoring
from engine.config.sla import Sla
from engine.config.types import PATTERN_HINTS
from engine.config.yamlfile import YamlDocument, read_yaml
from engine.errors import ConfigError, Problem

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConfigPaths:
    """Where the configuration lives; paths are shown relative to ``root``."""

    root: Path
    config: Path
    content: Path
    templates: Path

    @classmethod
    def under(cls, root: Path) -> ConfigPaths:
        """The standard layout: ``config/``, ``content/`` and ``templates/email/``."""
        return cls(root, root / "config", root / "content", root / "templates" / "email")

    def display(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A validated model and the document it came from (for locating later problems)."""

    model: M
    doc: YamlDocument


@dataclass(frozen=True)
class LoadedConfig:
    """Every file, validated in shape, not yet cross-checked."""

    paths: ConfigPaths
    personas: list[Loaded[Persona]]
    content: list[Loaded[ContentCatalog]]
    journeys: list[Loaded[Journey]]
    scoring: Loaded[Scoring]
    sla: Loaded[Sla]
    policy: Loaded[Policy]
    consent: Loaded[ConsentConfig]
    mail: Loaded[MailIdentity]
    retention: Loaded[Retention] | None  # None: the file is absent, the defaults apply


#: File kinds: name → (model, where the files are, relative to ``ConfigPaths``).
FILE_KINDS: dict[str, type[BaseModel]] = {
    "persona": Persona,
    "content": ContentCatalog,
    "journey": Journey,
    "scoring": Scoring,
    "sla": Sla,
    "policy": Policy,
    "consent": ConsentConfig,
    "mail": MailIdentity,
    "retention": Retention,
}


def load_config(paths: ConfigPaths) -> LoadedConfig:
    """Read and validate every file; raise one ``ConfigError`` listing all problems."""
    problems: list[Problem] = []
    for folder, what in ((paths.config, "config"), (paths.content, "content"),
                         (paths.templates, "templates")):
        if not folder.is_dir():
            problems.append(Problem(paths.display(folder), 1, 1, f"the {what} folder is missing",
                                    f"create {paths.display(folder)}/ (see the README)"))
    if problems:
        raise ConfigError(problems)

    def many(folder: Path, model: type[M], what: str) -> list[Loaded[M]]:
        files = _yaml_files(folder)
        if not files:
            problems.append(Problem(paths.display(folder), 1, 1, f"no {what} files",
                                    f"add at least one {paths.display(folder)}/*.yaml"))
        return [loaded for file in files if (loaded := _load(paths, file, model, problems))]

    def one(file: Path, model: type[M]) -> Loaded[M] | None:
        if not file.is_file():
            problems.append(Problem(paths.display(file), 1, 1, "the file is missing",
                                    f"create {paths.display(file)} (see the README)"))
            return None
        return _load(paths, file, model, problems)

    personas = many(paths.config / "personas", Persona, "persona")
    content = many(paths.content, ContentCatalog, "content")
    journeys = many(paths.config / "journeys", Journey, "journey")
    scoring = one(paths.config / "scoring.yaml", Scoring)
    sla = one(paths.config / "sla.yaml", Sla)
    policy = one(paths.config / "policy.yaml", Policy)
    consent = one(paths.config / "consent.yaml", ConsentConfig)
    mail = one(paths.config / "mail.yaml", MailIdentity)
    retention_file = paths.config / "retention.yaml"
    retention = _load(paths, retention_file, Retention, problems) \
        if retention_file.is_file() else None
    if (problems or scoring is None or sla is None or policy is None or consent is None
            or mail is None):
        raise ConfigError(problems)
    return LoadedConfig(paths, personas, content, journeys, scoring, sla, policy, consent, mail,
                        retention)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _load(
    paths: ConfigPaths, file: Path, model: type[M], problems: list[Problem]
) -> Loaded[M] | None:
    doc = read_yaml(file, paths.display(file))
    if isinstance(doc, Problem):
        problems.append(doc)
        return None
    found = list(validation_problems(doc, model))
    if found:
        problems.extend(found)
        return None
    return Loaded(model.model_validate(_plain(doc.data)), doc)


def validation_problems(doc: YamlDocument, model: type[BaseModel]) -> Iterator[Problem]:
    """Validate ``doc`` against ``model``; yield each error located in the file."""
    try:
        model.model_validate(_plain(doc.data))
    except ValidationError as exc:
        errors = [_untagged(e) for e in exc.errors(include_url=False)]
        typos = {
            (tuple(e["loc"][:-1]), close)
            for e in errors
            if e["type"] == "extra_forbidden"
            for close in difflib.get_close_matches(
                str(e["loc"][-1]), _allowed_keys(model, tuple(e["loc"][:-1])), n=1)
        }
        for error in errors:
            loc = tuple(error["loc"])
            if error["type"] == "missing" and (loc[:-1], loc[-1]) in typos:
                continue  # reported as the misspelt key, with a did-you-mean hint
            yield _problem(doc, model, error)


def _untagged(error: ErrorDetails) -> ErrorDetails:
    """Drop the union tag pydantic puts in a step's location (``steps[0].send.send``)."""
    loc = list(error["loc"])
    for index in range(len(loc) - 1):
        if loc[index] in STEP_ACTIONS and loc[index + 1] == loc[index]:
            del loc[index]
            break
    return {**error, "loc": tuple(loc)}


def _plain(data: Any) -> Any:
    """ruamel's commented containers → plain dicts and lists (pydantic sees no difference)."""
    if isinstance(data, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def _problem(doc: YamlDocument, model: type[BaseModel], error: ErrorDetails) -> Problem:
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        name = loc[-1]
        return doc.problem(loc[:-1], f"`{name}` is missing", f"add `{name}: …` here")
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean `{close[0]}`?" if close else (
            f"allowed here: {', '.join(allowed)}" if allowed else None)
        return doc.problem(loc, f"unknown key `{name}`", hint, at_key=True)
    if kind == "ripen":
        return doc.problem(loc, str(ctx.get("message", error["msg"])), ctx.get("hint"))
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "")
        close = difflib.get_close_matches(str(value), [e.strip() for e in
                                                       expected.replace(" or ", ",").split(",")],
                                          n=1)
        hint = f"did you mean {close[0]}?" if close else None
        return doc.problem(loc, f"{_show(value)} is not one of: {expected}", hint)
    if kind == "string_pattern_mismatch":
        text, hint = PATTERN_HINTS.get(str(ctx.get("pattern")),
                                       ("does not match the pattern", None))
        return doc.problem(loc, f"{_show(value)} {text}", hint)
    if kind == "string_type":
        return doc.problem(loc, f"expected text, got {_show(value)}",
                           'quote the value: "…"')
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return doc.problem(loc, f"expected a whole number, got {_show(value)}")
    if kind in ("float_type", "float_parsing"):
        return doc.problem(loc, f"expected a number, got {_show(value)}")
    if kind in ("bool_type", "bool_parsing"):
        return doc.problem(loc, f"expected true or false, got {_show(value)}")
    if kind == "list_type":
        return doc.problem(loc, f"expected a list, got {_show(value)}",
                           "write a list as `[a, b]` or as lines starting with `- `")
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return doc.problem(loc, f"expected a mapping of keys, got {_show(value)}",
                           "write `key: value` lines, indented under this key")
    if kind == "too_short":
        return doc.problem(loc, f"needs at least {ctx.get('min_length', 1)} entry",
                           "add an entry")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"greater_than_equal": "at least", "greater_than": "more than",
                 "less_than_equal": "at most", "less_than": "less than"}[kind]
        limit = next(iter(ctx.values()), "?")
        return doc.problem(loc, f"{_show(value)} must be {bound} {limit}")
    if kind.startswith("url"):
        return doc.problem(loc, f"{_show(value)} is not a URL",
                           "write a full address like https://example.com/whitepaper")
    if kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
        return doc.problem(loc, message.removeprefix("value is not a valid email address: ")
                           if "email" in message else message)
    if kind in ("time_parsing", "time_type"):
        return doc.problem(loc, f"{_show(value)} is not a time of day",
                           'write times as "HH:MM", e.g. "20:00"')
    if kind in ("date_parsing", "date_type", "date_from_datetime_parsing"):
        return doc.problem(loc, f"{_show(value)} is not a date", "write dates as 2026-01-31")
    return doc.problem(loc, str(error["msg"]))


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return str(value)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the sub-model at ``loc`` (best effort; for did-you-mean hints)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None:
            members = [_unwrap(a) for a in getattr(current, "__args__", ())]
            candidates = [a for a in members if hasattr(a, "model_fields")]
            current = next((c for c in candidates if part in c.model_fields), None)
            if current is None:
                return []
            fields = current.model_fields
            if part not in fields:
                continue
        if part not in fields:  # a union tag such as "send"
            continue
        current = _unwrap(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    if fields is None:
        return []
    return [f.alias or name for name, f in fields.items()]


def _unwrap(annotation: Any) -> Any:
    """``list[X] | None`` → ``X`` (the model a nested key belongs to)."""
    import typing

    seen = 0
    while seen < 6:
        seen += 1
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is None:
            return annotation
        if origin is typing.Annotated:
            annotation = args[0]
            continue
        models = [a for a in args if hasattr(a, "model_fields")]
        if origin in (list, tuple, set) and args:
            annotation = args[0]
        elif origin is dict and args:
            annotation = args[1]
        elif len(models) == 1:
            return models[0]
        else:
            nested = [a for a in args if a is not type(None)]
            if len(nested) == 1:
                annotation = nested[0]
            else:
                return annotation
    return annotation
