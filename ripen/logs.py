"""How ripen logs: text (the default) or, with ``RIPEN_LOG_FORMAT=json``, one JSON object a
line for a log collector — ripen's own logs, uvicorn's access log (tokens hidden) and
Prefect's flow and task logs alike, with the ids a record knows (``flow_run_name``,
``task_run_name`` — which names the journey and step —, ``journey``, ``step``, ``lead``).

Prefect configures its logging when it is first imported: in JSON mode it is handed a
logging file of its own (``PREFECT_LOGGING_SETTINGS_PATH``) with the console handler
writing JSON; so this module imports no Prefect.
"""

from __future__ import annotations

import copy
import logging
import logging.config
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ripen.api import accesslog

#: python-json-logger: the standard fields renamed; every extra attribute of a record is
#: added as a field of its own.
JSON_FORMATTER: dict[str, Any] = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
    "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
}


def prefect_logging_file(folder: Path) -> Path:
    """Prefect's own logging configuration with its console handler writing JSON lines
    (its API handler untouched: flow and task logs still reach the Prefect UI)."""
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    assert spec is not None
    assert spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations))) / "logging" / "logging.yml"
    yaml = YAML(typ="safe")
    config = yaml.load(source.read_text(encoding="utf-8"))
    config["formatters"]["json"] = JSON_FORMATTER
    config["handlers"]["console"] = {"level": 0, "class": "logging.StreamHandler",
                                     "formatter": "json", "stream": "ext://sys.stderr"}
    config["handlers"]["debug"]["formatter"] = "json"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prefect-logging-json.yml"
    with path.open("w", encoding="utf-8") as handle:
        YAML().dump(config, handle)
    return path


def prepare(log_format: str, folder: Path) -> None:
    """Before Prefect is imported: in JSON mode, Prefect's console logs JSON too."""
    if log_format == "json":
        os.environ.setdefault("PREFECT_LOGGING_SETTINGS_PATH",
                              str(prefect_logging_file(folder)))


def configure(log_format: str) -> None:
    """ripen's own loggers (``ripen.*``, ``engine.*``): INFO to stderr, text or JSON."""
    formatter = JSON_FORMATTER if log_format == "json" else {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    logging.config.dictConfig({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"ripen": formatter},
        "handlers": {"ripen": {"class": "logging.StreamHandler", "formatter": "ripen",
                               "stream": "ext://sys.stderr"}},
        "loggers": {name: {"level": "INFO", "handlers": ["ripen"], "propagate": False}
                    for name in ("ripen", "engine")}})


def uvicorn_config(log_format: str) -> dict[str, Any]:
    """uvicorn's logging: its own text, or JSON lines; the access log hides tokens."""
    config = accesslog.log_config()
    if log_format == "json":
        config = copy.deepcopy(config)
        for name in config["formatters"]:
            config["formatters"][name] = JSON_FORMATTER
    return config
