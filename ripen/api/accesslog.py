"""uvicorn's access log without secrets: link tokens and query values are hidden.

A confirmation, unsubscribe or fast-lane token is a working link to somebody's consent,
and ``/api/gdpr/export?email=`` carries an address; neither belongs in a log file.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from engine import redact


class RedactTokens(logging.Filter):
    """Rewrites the path of an access log record (uvicorn's args: client, method, path,
    HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            record.args = (client, method, redact.path(str(path)), version, status)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with ``RedactTokens`` on the access handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": f"{__name__}.RedactTokens"}
    config["handlers"]["access"]["filters"] = ["redact"]
    return config
