"""Prefect's temporary server of embedded mode: started before a flow run needs it.

Without ``PREFECT_API_URL``, Prefect starts a temporary server in a subprocess the first time
a flow runs. Its first start migrates Prefect's SQLite database, which on a busy two-core
machine can take longer than Prefect's 20-second default (``ripen`` raises it, see
``ripen.cli``). When Prefect gives up it leaves the slow server process running and the next
flow run starts another one; here a failed start stops what it started, so the next tick
begins afresh.
"""

from __future__ import annotations

import threading

from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import get_current_settings

from engine.errors import RipenError

_lock = threading.Lock()


def ensure_temporary_server() -> None:
    """Start Prefect's temporary server unless it runs or a Prefect server is configured."""
    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return
    with _lock:  # the tick and the maintenance run can both come here first
        server = SubprocessASGIServer()
        if server.running:
            return
        try:
            server.start()
        except BaseException as exc:
            server.stop()
            if not isinstance(exc, Exception):
                raise
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RipenError(
                f"Prefect's temporary server did not start ({reason}); allow it more time "
                "with PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or set PREFECT_API_URL "
                "to a running Prefect server") from exc

