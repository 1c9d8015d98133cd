"""Embedded mode's temporary Prefect server: a start that times out leaves nothing running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.factories import REPO

SCRIPT = """
import os
from pathlib import Path

from flows.server import ensure_temporary_server

def children():
    found = set()
    for task in Path("/proc/self/task").iterdir():
        found |= {int(pid) for pid in (task / "children").read_text().split()}
    return found

try:
    ensure_temporary_server()
except Exception as exc:
    print(type(exc).__name__, str(exc))
print("children:", len(children()))
"""


def test_a_temporary_server_start_that_times_out_stops_its_process(tmp_path: Path) -> None:
    """Prefect gives up on a slow first start (here at once) and would leave the server
    process running; ripen stops it, so the next tick starts afresh, and says what to do."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RIPEN_"))}
    env.update({"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "0",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "RipenError Prefect's temporary server did not start (Timed out while attempting to "
        "connect to ephemeral Prefect API server.); allow it more time with "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or set PREFECT_API_URL to a running "
        "Prefect server",
        "children: 0",
    ]
