"""`ripen run` as `make run` starts it: API on localhost, scheduler, clean Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import REPO

RIPEN = str(Path(sys.executable).with_name("ripen"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    """Every process started by ``pid`` (and by those), from /proc."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = {int(c) for c in (task / "children").read_text().split()}
                todo += children - found
                found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_run_serves_health_ticks_and_stops_cleanly(tmp_path: Path, stop: signal.Signals
                                                   ) -> None:
    """The API answers, the scheduler ticks through Prefect; SIGINT (Ctrl-C) or SIGTERM (a
    service manager) ends it with exit 0 and stops Prefect's temporary server too. The
    start-up line shows no relay password, and says that a generated key signs links.

    Prefect's temporary server can fail its very first start on a busy machine; a failed
    tick must not stop the scheduler, so the test waits for a *successful* tick and reports
    the errors of earlier ones.
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPEN_")}
    env.update({"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
                "RIPEN_MAIL_URL": "smtp://mailer:hunter2@127.0.0.1:9?starttls=no",
                "RIPEN_TICK_SECONDS": "2",
                "PREFECT_HOME": str(tmp_path / "prefect")})
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen([RIPEN, "run", "--port", str(port)], cwd=REPO, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/health"
        body = None
        tick_errors: set[str] = set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                response = httpx.get(url, timeout=5)
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            assert response.status_code == 200, response.text
            body = response.json()
            scheduler = body["scheduler"]
            if scheduler["last_tick_error"]:
                tick_errors.add(scheduler["last_tick_error"])
            elif scheduler["last_tick_at"]:
                break
            time.sleep(0.5)
        httpx.get(f"http://127.0.0.1:{port}/confirm/secret.link.token", timeout=5)
        httpx.get(f"http://127.0.0.1:{port}/api/gdpr/export?email=ingrid%40example.com",
                  timeout=5)
        log_text = (tmp_path / "run.log").read_text()
        assert body is not None, log_text
        assert body["database"] == "ok"
        assert body["scheduler"]["running"] is True
        assert body["scheduler"]["last_tick_at"], (tick_errors, log_text)
        assert body["scheduler"]["last_tick_error"] is None, (tick_errors, log_text)
        if tick_errors:
            print(f"\nearlier ticks failed and were retried: {sorted(tick_errors)}")
    finally:
        started = _descendants(process.pid)  # Prefect's temporary server among them
        process.send_signal(stop)
        code = process.wait(timeout=120)
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert code == 0, output
    assert "ripen stopped" in output
    assert "Traceback" not in output
    assert started, "Prefect's temporary server should have been running"
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [pid for pid in started if _alive(pid)] == []
    assert "mail smtp://mailer:***@127.0.0.1:9" in output
    assert "hunter2" not in output
    assert "WARNING: RIPEN_SECRET_KEYS is not set" in output
    assert '"GET /confirm/*** HTTP/1.1" 404' in output  # the access log hides link tokens …
    assert '"GET /api/gdpr/export?email=*** HTTP/1.1" 401' in output  # … and addresses
    assert "secret.link.token" not in output
    assert "ingrid" not in output


@pytest.mark.slow
def test_run_with_ui_serves_prefects_ui_with_the_tick_flows(tmp_path: Path) -> None:
    """`ripen run --ui` (as `make run` starts it) prints where Prefect's UI is, the UI
    answers there and knows the tick flow after the first tick; Ctrl-C stops it too."""
    port, ui_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIPEN_", "PREFECT_"))}
    env.update({"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
                "RIPEN_TICK_SECONDS": "2", "RIPEN_SECRET_KEYS": "u" * 40,
                "PREFECT_HOME": str(tmp_path / "prefect")})
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen([RIPEN, "run", "--port", str(port), "--ui", "--ui-port",
                                str(ui_port)], cwd=REPO, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    ui = f"http://127.0.0.1:{ui_port}"
    try:
        deadline = time.monotonic() + 240
        flows: list[str] = []
        while time.monotonic() < deadline and "ripen-tick" not in flows:
            with contextlib.suppress(httpx.TransportError, ValueError):
                flows = [f["name"] for f in httpx.post(f"{ui}/api/flows/filter", json={},
                                                       timeout=5).json()]
            time.sleep(1)
        output = (tmp_path / "run.log").read_text()
        assert "ripen-tick" in flows, output
        assert f"Prefect UI: {ui}" in output
        page = httpx.get(ui, timeout=10)
        assert page.status_code == 200
        assert "<!DOCTYPE html>" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{ui}/api/health", timeout=5)


@pytest.mark.slow
def test_run_logs_one_json_object_a_line(tmp_path: Path) -> None:
    """RIPEN_LOG_FORMAT=json: every line `ripen run` writes — its own, uvicorn's access log
    (tokens hidden), Prefect's flow logs — is one JSON object; Prefect's carry the run."""
    import json

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIPEN_", "PREFECT_"))}
    env.update({"RIPEN_DATABASE_URL": f"sqlite:///{tmp_path / 'ripen.db'}",
                "RIPEN_TICK_SECONDS": "2", "RIPEN_LOG_FORMAT": "json",
                "PREFECT_HOME": str(tmp_path / "prefect")})
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen([RIPEN, "run", "--port", str(port)], cwd=REPO, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()[
                        "scheduler"]["last_tick_at"]:
                    break
            time.sleep(0.5)
        httpx.get(f"http://127.0.0.1:{port}/confirm/secret.link.token", timeout=5)
        time.sleep(1)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
        log.close()
    lines = [line for line in (tmp_path / "run.log").read_text().splitlines() if line.strip()]
    assert code == 0, lines[-20:]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("/confirm/***" in r["message"] for r in access)
    assert not any("secret.link.token" in line for line in lines)
    flows = [r for r in records if r["logger"] == "prefect.flow_runs"]
    assert any(r.get("flow_run_name") and "Finished in state" in r["message"] for r in flows)
    assert any(r["logger"] == "ripen.run" and r["message"] == "ripen stopped" for r in records)
