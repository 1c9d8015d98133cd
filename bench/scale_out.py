"""S6 scale-out: deployment mode as the operations guide runs it — a Prefect server on
PostgreSQL, `ripen deploy`, process workers (`ripen worker`), the store on PostgreSQL — with
1, 2 and 4 workers sending the same due leads.

For each worker count: a fresh store with ``S6_LEADS`` leads of which ``S6_DUE`` are due
(``RIPEN_BENCH_S6_DUE``), that many workers started (each runs one flow run at a time) and
online, then as many tick flow runs created at once, which share the due leads through their
``SKIP LOCKED`` claims. The rate is the due leads over the sending window (the first outbox
row written to the last mail sent, as the store records them); the wall time from creating
the runs until every run has ended and the store is settled (nothing due, the outbox
drained) is given beside it, the flow-run processes' start included. Postfix's sink writes
every message it accepts to a file, so mails received twice and mails marked sent but never
received are counted, not assumed. The machine's CPU share during the window says how much
of the two cores the run could use: the ratio to one worker is bounded by it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from bench.common import (
    PG_ADMIN,
    SECRET_KEY,
    app,
    bench_home,
    free_port,
    fresh_database,
    smtp_sink,
)
from bench.data import seed
from engine.config.compiler import CompiledConfig, load_and_compile
from engine.config.loader import ConfigPaths
from engine.store import database

S6_LEADS = 100_000
S6_DUE = int(os.environ.get("RIPEN_BENCH_S6_DUE", "100000"))
WORKER_COUNTS = (1, 2, 4)
BIN = Path(sys.executable).parent
POOL = "bench"


@dataclass
class Started:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM the process group (a worker's flow-run processes too), then SIGKILL."""
        if self.popen.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=15)
                return
            except subprocess.TimeoutExpired:
                continue

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _start(name: str, args: list[str], env: dict[str, str], folder: Path) -> Started:
    log = folder / f"{name}.log"
    with log.open("ab") as handle:
        popen = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT,  # noqa: S603
                                 start_new_session=True)
    return Started(name, popen, log)


def _wait(what: str, condition: Callable[[], bool], timeout: float,
          logs: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise RuntimeError(f"timed out waiting for {what}\n{logs()}")


def _cpu_busy() -> tuple[float, float]:
    """The machine's (busy, total) CPU jiffies so far, from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


#: The parts whose CPU S6 reports, by what their command line holds (PostgreSQL's and the
#: sink's by their program name: "postgres" is in the bench's own command line too).
PARTS = (("ripen workers", (b"prefect.engine", b"prefect worker", b"ripen worker")),
         ("Prefect server", (b"prefect server", b"prefect.server")))
PROGRAMS = {"postgres": "PostgreSQL", "smtp-sink": "SMTP sink"}


def _cpu_by_part() -> dict[int, tuple[str, float]]:
    """Each process's part (see ``PARTS``) and its CPU seconds, those of the children it has
    waited for included (a flow-run process's ends up in its worker's, a PostgreSQL
    backend's in the postmaster's)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            program, stat = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        part = PROGRAMS.get(program.split("(", 1)[1]) or next(
            (name for name, marks in PARTS if any(m in command for m in marks)), None)
        if part is not None:
            found[int(entry.name)] = (part, sum(int(v) for v in stat.split()[11:15]) / tick)
    return found


def _cpu_spent(before: dict[int, tuple[str, float]],
               after: dict[int, tuple[str, float]]) -> dict[str, float]:
    spent: Counter[str] = Counter()
    for pid, (part, seconds) in after.items():
        spent[part] += seconds - before.get(pid, (part, 0.0))[1]
    return dict(spent)


@contextmanager
def _prefect_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the Prefect server (asyncpg URL), dropped
    after."""
    with fresh_database("postgresql", migrate=False) as engine:
        yield make_url(database.normalise_url(PG_ADMIN)).set(
            drivername="postgresql+asyncpg", database=engine.url.database).render_as_string(
            hide_password=False)


@dataclass(frozen=True)
class Run:
    workers: int
    seconds: float    # from creating the flow runs until the store is settled
    sending: float    # from the first outbox row written to the last mail sent
    due: int
    sent: int
    received: int
    duplicates: int
    lost: int
    unknown: int
    cpu_share: float
    cpu_seconds: dict[str, float]  # by part, in the window


def _flow_run_states(api: str, ids: list[str]) -> list[str]:
    answer = httpx.post(f"{api}/flow_runs/filter", timeout=30,
                        json={"flow_runs": {"id": {"any_": ids}}})
    answer.raise_for_status()
    return [run["state_type"] for run in answer.json()]


def _workers_online(api: str) -> int:
    answer = httpx.post(f"{api}/work_pools/{POOL}/workers/filter", timeout=30, json={})
    answer.raise_for_status()
    return sum(1 for worker in answer.json() if worker.get("status") == "ONLINE")


def _scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar() or 0)


def _settled(engine: Engine) -> bool:
    return _scalar(engine, "SELECT count(*) FROM enrollment WHERE status = 'active' AND "
                           "due_at <= now()") == 0 and _scalar(
        engine, "SELECT count(*) FROM mail_outbox WHERE status IN ('pending', 'retry', "
                "'sending')") == 0


def _received(dump: Path) -> Counter[str]:
    """Message-IDs of the messages the sink wrote, read line by line (the file holds every
    message: hundreds of MB)."""
    received: Counter[str] = Counter()
    if dump.exists():
        with dump.open("rb") as lines:
            for line in lines:
                if line[:12].lower() == b"message-id: ":
                    received[line[12:].strip().strip(b"<>").decode()] += 1
    return received


def _one_count(workers: int, *, base_env: dict[str, str], config: CompiledConfig,
               sink_port: int, dump: Path, api: str, folder: Path) -> Run:
    """Seed a fresh store, start ``workers`` workers, run as many tick flow runs at once."""
    dump.unlink(missing_ok=True)
    with fresh_database("postgresql") as engine:
        # due by the workers' clock, the wall clock (the rest due 1–30 days after it)
        seed(app(engine, sink_port, config=config), leads=S6_LEADS, due=S6_DUE,
             now=datetime.now(UTC))
        env = dict(base_env, RIPEN_DATABASE_URL=engine.url.render_as_string(
            hide_password=False))
        subprocess.run([str(BIN / "ripen"), "deploy", "--pool", POOL], env=env,  # noqa: S603
                       check=True, capture_output=True, timeout=300)
        started = [_start(f"worker-{workers}-{n}", [str(BIN / "ripen"), "worker", "--pool",
                                                    POOL, "--limit", "1", "--name",
                                                    f"worker-{workers}-{n}"], env, folder)
                   for n in range(1, workers + 1)]

        def logs() -> str:
            return "\n".join(f"--- {s.name}\n{s.tail()}" for s in started)

        try:
            _wait(f"{workers} workers online", lambda: _workers_online(api) >= workers,
                  timeout=180, logs=logs)
            deployment = httpx.get(f"{api}/deployments/name/ripen-tick/tick", timeout=30)
            deployment.raise_for_status()
            create = f"{api}/deployments/{deployment.json()['id']}/create_flow_run"
            busy_before, total_before = _cpu_busy()
            parts_before = _cpu_by_part()
            clock = time.perf_counter()
            ids = []
            for _ in range(workers):
                made = httpx.post(create, json={}, timeout=30)
                made.raise_for_status()
                ids.append(made.json()["id"])
            _wait("the tick flow runs to end", lambda: all(
                state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
                for state in _flow_run_states(api, ids)), timeout=1800, logs=logs)
            _wait("the store to settle", lambda: _settled(engine), timeout=600, logs=logs)
            seconds = time.perf_counter() - clock
            busy_after, total_after = _cpu_busy()
            parts = _cpu_spent(parts_before, _cpu_by_part())
            states = _flow_run_states(api, ids)
            if set(states) != {"COMPLETED"}:
                raise RuntimeError(f"tick flow runs ended {states}\n{logs()}")
        finally:
            for process in started:
                process.stop()
            # workers go offline only after a missed heartbeat: remove them for the next count
            with suppress(httpx.HTTPError):
                for n in range(1, workers + 1):
                    httpx.delete(f"{api}/work_pools/{POOL}/workers/worker-{workers}-{n}",
                                 timeout=30)
        time.sleep(1)  # the sink has written what it answered 250 for
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT status, message_id FROM mail_outbox")).all()
            first, last = connection.execute(text(
                "SELECT min(created_at), max(sent_at) FROM mail_outbox")).one()
        received = _received(dump)
        by_status = Counter(row.status for row in rows)
        sent_ids = [row.message_id.strip("<>") for row in rows if row.status == "sent"]
        return Run(
            workers=workers, seconds=seconds, sending=(last - first).total_seconds(),
            due=S6_DUE, sent=by_status["sent"],
            received=sum(received.values()),
            duplicates=sum(n - 1 for n in received.values() if n > 1),
            lost=sum(1 for mid in sent_ids if received[mid] == 0),
            unknown=by_status["unknown"],
            cpu_share=(busy_after - busy_before) / max(1.0, total_after - total_before),
            cpu_seconds=parts)


def s6_scale_out(backend: str) -> dict[str, Any]:
    """1, 2 and 4 workers in deployment mode on PostgreSQL: leads/s, the ratio to one worker,
    the machine's CPU share, duplicates and losses (must be 0)."""
    if backend != "postgresql":
        raise ValueError("S6 runs deployment mode, which needs PostgreSQL")
    folder = Path(tempfile.mkdtemp(prefix="ripen-bench-s6-"))
    folder.chmod(0o777)  # the sink writes its dump as nobody
    home = bench_home()
    policy = home / "config" / "policy.yaml"  # the run happens at any wall-clock hour
    policy.write_text("timezone: Europe/Berlin\n"
                      "business_days: [mon, tue, wed, thu, fri, sat, sun]\n")
    dump = folder / "received"
    runs: list[Run] = []
    try:
        with smtp_sink(dump) as sink, _prefect_database() as prefect_url:
            port = free_port()
            api = f"http://127.0.0.1:{port}/api"
            base_env = {key: value for key, value in os.environ.items()
                        if not key.startswith(("RIPEN_", "PREFECT_"))}
            base_env.update({
                "RIPEN_ENV": "production", "RIPEN_HOME": str(home),
                "RIPEN_MAIL_URL": f"smtp://127.0.0.1:{sink.port}?starttls=no",
                "RIPEN_PUBLIC_BASE_URL": "https://ripen.example",
                "RIPEN_SECRET_KEYS": SECRET_KEY, "RIPEN_TICK_SECONDS": "3600",
                "PREFECT_API_URL": api, "PREFECT_HOME": str(folder / "prefect"),
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
            })
            server = _start("prefect-server", [
                str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                str(port)], dict(base_env, PREFECT_API_DATABASE_CONNECTION_URL=prefect_url,
                                 # runs are made by hand, at once: no scheduled ones between
                                 PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false"), folder)
            try:
                _wait("the Prefect server", lambda: _answers(f"{api}/health"), timeout=180,
                      logs=server.tail)
                config = load_and_compile(ConfigPaths.under(home))  # what the workers run
                for workers in WORKER_COUNTS:
                    runs.append(_one_count(workers, base_env=base_env, config=config,
                                           sink_port=sink.port, dump=dump, api=api,
                                           folder=folder))
            finally:
                server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    one = runs[0].due / runs[0].sending
    figures: dict[str, Any] = {}
    for run in runs:
        rate = run.due / run.sending
        figures[f"S6 scale-out, {run.workers} worker{'s' if run.workers > 1 else ''}"] = {
            "value": rate, "unit": "leads/s",
            **({"baseline": one, "baseline_name": "one worker"} if run.workers > 1 else {}),
            "detail": f"{run.due:,} due of {S6_LEADS:,} leads sent in {run.sending:.1f} s "
                      f"(first outbox row to last mail); {run.seconds:.1f} s from creating "
                      f"the flow runs to a settled store ({run.due / run.seconds:,.0f} "
                      f"leads/s, the flow-run processes' start included); machine CPU busy "
                      f"{run.cpu_share:.0%} of {os.cpu_count()} cores; CPU per 1,000 leads: "
                      + ", ".join(f"{part} {seconds * 1000 / run.due:.2f} s" for part, seconds
                                  in sorted(run.cpu_seconds.items(), key=lambda p: -p[1]))
                      + "; "
                      f"mails sent {run.sent:,}, received {run.received:,}, duplicates "
                      f"{run.duplicates}, sent but not received {run.lost}, unknown "
                      f"{run.unknown}",
            "cpu_share": run.cpu_share, "cpu_seconds": run.cpu_seconds,
            "duplicates": run.duplicates, "lost": run.lost,
            "targets": {"duplicates": 0, "lost": 0}}
        if run.duplicates or run.lost or run.sent + run.unknown != run.due:
            raise RuntimeError(f"S6 with {run.workers} workers: {figures}")
    return figures


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
