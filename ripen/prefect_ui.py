"""Prefect's UI for the embedded mode (``ripen run --ui``, as ``make run`` starts it).

A Prefect server with its UI runs as a process of its own on ``127.0.0.1:port`` with its
database under ``PREFECT_HOME``; this process's flows report to it (``PREFECT_API_URL`` is
set before Prefect is first imported, which is why this module imports no Prefect), so a
marketer on a laptop sees the journey flows, their runs, counts and artifacts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from engine.errors import RipenError


class UiServer:
    """Prefect's server with its UI in a process group of its own (stopped with ripen)."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        env = {**os.environ, "PREFECT_SERVER_UI_ENABLED": "true",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_SERVER_API_HOST": "127.0.0.1",
               "PREFECT_SERVER_API_PORT": str(self.port)}
        env.pop("PREFECT_API_URL", None)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                 "--port", str(self.port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RipenError(f"Prefect's UI server stopped at start (see {self.log}); is "
                                 f"port {self.port} taken? Choose another with --ui-port")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    os.environ["PREFECT_API_URL"] = f"{self.url}/api"
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RipenError(f"Prefect's UI server did not answer within {timeout:.0f} s (see "
                         f"{self.log})")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
