"""Deployment mode, started for real: a `prefect server` on PostgreSQL, `ripen deploy`, two
`ripen worker` processes, the API under `ripen serve`, a loopback SMTP server and a loopback
webhook receiver — the commands of the README's operations guide, with loopback values.

10,000 enrolled leads are due at once and a burst of events (contact requests: fast lane
handovers) arrives through the API; while the workers' tick flow runs send, one worker is
killed with SIGKILL together with its flow-run processes, then started again. The test then
reports mails lost, mails duplicated (rows left ``unknown`` listed), webhooks lost and
duplicate deliveries sharing a ``webhook-id`` — and requires the losses and duplicates to be 0.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from engine.store import database
from tests.conftest import Figure, SmtpSink, free_port
from tests.factories import REPO
from tests.receiver import Receiver, running

pytestmark = pytest.mark.slow

LEADS = 10_000
CONTACT_REQUESTS = 300
KILL_AFTER_MAILS = 1_500
BIN = Path(sys.executable).parent
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64
API_KEY = "deploy-test-api-key-0123456789abcdef"


class Mail(NamedTuple):
    id: int
    status: str
    message_id: str          # without the angle brackets, as the Message-ID header reads
    idempotency_key: str
    last_error: str | None


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(self.args, env=self.env, stdout=handle,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def descendants(self) -> list[int]:
        """This process and everything it started, read from /proc."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def flow_runs(self) -> list[int]:
        """Flow-run processes (``python -m prefect.engine``) this worker is running."""
        runs = []
        for pid in self.descendants():
            try:
                if b"prefect.engine" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    runs.append(pid)
            except OSError:
                continue
        return runs

    def flow_run_ids(self) -> set[str]:
        """The Prefect flow-run ids of those processes (the worker hands each its id in
        ``PREFECT__FLOW_RUN_ID``)."""
        ids = set()
        for pid in self.flow_runs():
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            ids |= {item.split(b"=", 1)[1].decode() for item in environ
                    if item.startswith(b"PREFECT__FLOW_RUN_ID=")}
        return ids

    def kill_9(self) -> int:
        """SIGKILL the worker and its flow runs at one instant, as a crashed machine would."""
        pids = self.descendants()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert self.popen is not None
        self.popen.wait(timeout=10)
        return len(pids)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        pids = self.descendants()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            try:
                self.popen.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Cluster:
    env: dict[str, str]
    db: Engine
    folder: Path
    sink: SmtpSink
    receiver: Receiver
    api_url: str
    processes: list[Process] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Process:
        process = Process(name, list(args), self.env, self.folder / f"{name}.log").start()
        self.processes.append(process)
        return process

    def run(self, *args: str) -> str:
        done = subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)

    def scalar(self, sql: str) -> Any:
        with self.db.connect() as connection:
            return connection.execute(text(sql)).scalar()


def _wait(what: str, condition: Callable[[], bool], cluster: Cluster,
          timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{cluster.logs()}")


@pytest.fixture
def postgres_databases() -> Iterator[tuple[str, str]]:
    """A fresh database for ripen and one for the Prefect server; dropped afterwards."""
    url = os.environ.get("RIPEN_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("deployment mode needs PostgreSQL: set RIPEN_TEST_DATABASE_URL "
                    "(.ci/run does)")
    admin = create_engine(database.normalise_url(url), isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:10]
    names = (f"ripen_deploy_{suffix}", f"prefect_deploy_{suffix}")
    with admin.connect() as connection:
        for name in names:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = make_url(url)
    try:
        yield (base.set(database=names[0]).render_as_string(hide_password=False),
               base.set(drivername="postgresql+asyncpg", database=names[1])
               .render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _home(folder: Path, receiver_url: str) -> Path:
    """The example configuration, with the test's CRM endpoint and a send policy that lets
    mail out at any hour (the run happens whenever CI runs)."""
    home = folder / "home"
    for part in ("config", "content", "templates"):
        shutil.copytree(REPO / part, home / part)
    sla = home / "config" / "sla.yaml"
    sla.write_text(sla.read_text().replace(
        "url: https://crm.example.com/hooks/ripen",
        f"url: {receiver_url}\n    allow_private: true"))
    (home / "config" / "policy.yaml").write_text(
        "timezone: Europe/Berlin\n"
        "business_days: [mon, tue, wed, thu, fri, sat, sun]\n")
    mail = home / "config" / "mail.yaml"
    mail.write_text(mail.read_text().replace("per_second: 50", "per_second: 400"))
    return home


@pytest.fixture
def cluster(postgres_databases: tuple[str, str], tmp_path: Path,
            smtp: tuple[SmtpSink, int]) -> Iterator[Cluster]:
    ripen_url, prefect_url = postgres_databases
    sink, smtp_port = smtp
    prefect_port, api_port = free_port(), free_port()
    with running(WEBHOOK_SECRET) as receiver:
        home = _home(tmp_path, receiver.url)
        # The operations guide's environment (README), with loopback values.
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("RIPEN_", "PREFECT_"))}
        env.update({
            "RIPEN_ENV": "production",
            "RIPEN_HOME": str(home),
            "RIPEN_DATABASE_URL": ripen_url,
            "RIPEN_MAIL_URL": f"smtp://127.0.0.1:{smtp_port}?starttls=no",
            "RIPEN_PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "RIPEN_SECRET_KEYS": "deploy-test-secret-key-0123456789abcdef",
            "RIPEN_API_KEYS": API_KEY,
            "RIPEN_TRUSTED_PROXIES": "127.0.0.1",
            "RIPEN_WEBHOOK_SECRET_CRM": WEBHOOK_SECRET,
            "RIPEN_TICK_SECONDS": "5",
            "RIPEN_LEASE_SECONDS": "15",
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        })
        server_env = dict(env, PREFECT_API_DATABASE_CONNECTION_URL=prefect_url)
        db = create_engine(database.normalise_url(ripen_url))
        made = Cluster(env=env, db=db, folder=tmp_path, sink=sink, receiver=receiver,
                       api_url=f"http://127.0.0.1:{api_port}")
        server = Process("prefect-server", [str(BIN / "prefect"), "server", "start",
                                            "--host", "127.0.0.1", "--port", str(prefect_port)],
                         server_env, tmp_path / "prefect-server.log").start()
        made.processes.append(server)
        try:
            _wait("the Prefect server", lambda: _answers(env["PREFECT_API_URL"] + "/health"),
                  made, timeout=180)
            yield made
        finally:
            for process in reversed(made.processes):
                process.stop()
            db.dispose()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _seed(cluster: Cluster) -> None:
    """10,000 confirmed leads enrolled in the persona journeys, all due now (bench data)."""
    from bench.data import seed
    from engine.bootstrap import bootstrap_migrated
    from engine.settings import load_settings

    settings = load_settings(home=cluster.env["RIPEN_HOME"],
                             database_url=cluster.env["RIPEN_DATABASE_URL"])
    ripen_app = bootstrap_migrated(settings)
    try:
        seed(ripen_app, leads=LEADS, due=LEADS)
    finally:
        ripen_app.dispose()


def _burst(cluster: Cluster) -> int:
    """Contact requests through the API (batches, both API processes): fast-lane handovers."""
    events = [{"email": f"lead{i}@bench{((i - 1) % 997) + 1}.example",
               "type": "contact_request", "idempotency_key": f"burst-{i}"}
              for i in range(1, CONTACT_REQUESTS + 1)]
    handovers = 0
    with httpx.Client(base_url=cluster.api_url, timeout=60,
                      headers={"authorization": f"Bearer {API_KEY}"}) as client:
        for start in range(0, len(events), 50):
            answer = client.post("/api/events/batch", json={"events": events[start:start + 50]})
            assert answer.status_code == 202, answer.text
            handovers += answer.json()["handovers"]
    return handovers


def _received_message_ids(sink: SmtpSink) -> Counter[str]:
    parser = BytesHeaderParser()
    return Counter(str(parser.parsebytes(raw)["Message-ID"]).strip("<>")
                   for _, _, raw in list(sink.messages))


#: Mail still to send now (a lead's mail held while sales has the lead waits for later).
OPEN_MAIL = ("SELECT count(*) FROM mail_outbox WHERE status IN ('pending', 'retry', 'sending') "
             "AND (next_attempt_at IS NULL OR next_attempt_at <= now())")


def _settled(cluster: Cluster) -> bool:
    """Nothing due is left: journeys past their first step, outbox and webhooks drained."""
    due = cluster.scalar("SELECT count(*) FROM enrollment WHERE status = 'active' "
                         "AND due_at <= now()")
    open_mail = cluster.scalar(OPEN_MAIL)
    open_hooks = cluster.scalar("SELECT count(*) FROM webhook_delivery WHERE status IN "
                                "('pending', 'retry', 'delivering')")
    return bool(due == 0 and open_mail == 0 and open_hooks == 0)


def _flow_runs(cluster: Cluster, state: str) -> list[str]:
    """Ids of the tick and maintenance flow runs in ``state`` (RUNNING, CRASHED …); the
    journey runs inside a tick are the maintenance run's to settle (its own test)."""
    answer = httpx.post(f"{cluster.env['PREFECT_API_URL']}/flow_runs/filter", timeout=30,
                        json={"flow_runs": {"state": {"type": {"any_": [state]}}},
                              "flows": {"name": {"any_": ["ripen-tick",
                                                          "ripen-maintenance"]}}})
    answer.raise_for_status()
    return [run["id"] for run in answer.json()]


def test_two_workers_one_killed_mid_batch_lose_and_duplicate_nothing(
        figure: Figure, cluster: Cluster) -> None:
    ripen = str(BIN / "ripen")
    deployed = cluster.run(ripen, "deploy", "--pool", "ripen")
    assert "deployment ripen-tick/tick" in deployed, deployed
    _seed(cluster)
    api = cluster.start("api", ripen, "serve", "--host", "127.0.0.1", "--port",
                        cluster.api_url.rsplit(":", 1)[1], "--workers", "2")
    _wait("the API", lambda: _answers(cluster.api_url + "/health"), cluster, timeout=120)
    assert api.popen is not None
    assert api.popen.poll() is None
    workers = [cluster.start(f"worker-{n}", ripen, "worker", "--pool", "ripen",
                             "--name", f"worker-{n}") for n in (1, 2)]
    handovers = _burst(cluster)
    assert handovers > 0

    # Kill -9 a worker that is running a tick flow, once the mail is well under way.
    _wait(f"{KILL_AFTER_MAILS} mails", lambda: len(cluster.sink.messages) >= KILL_AFTER_MAILS,
          cluster, timeout=600)
    victim: list[Process] = []
    running_at_kill: list[str] = []

    def busy() -> bool:
        """A worker whose flow run is Running (not one still starting: a run killed while
        Pending is not a run killed mid-batch)."""
        running_at_kill[:] = sorted({run for w in workers for run in w.flow_run_ids()}
                                    & set(_flow_runs(cluster, "RUNNING")))
        victim[:] = [w for w in workers if w.flow_run_ids() & set(running_at_kill)]
        return bool(victim)

    _wait("a worker busy with a running flow run", busy, cluster, timeout=120)
    mails_at_kill = len(cluster.sink.messages)
    mine = victim[0].flow_run_ids()
    killed = victim[0].kill_9()
    # Its runs still Running once its processes are gone were killed mid-run (one that
    # finished in the instant before the kill is Completed, and not the automation's).
    running_at_kill[:] = sorted(mine & set(_flow_runs(cluster, "RUNNING")))
    assert running_at_kill, "the victim's flow run finished just before the kill"
    restarted = cluster.start(f"{victim[0].name}-restarted", ripen, "worker", "--pool",
                              "ripen", "--name", victim[0].name)

    _wait("every due step, mail and webhook done", lambda: _settled(cluster), cluster,
          timeout=900)
    # The killed worker's runs stopped sending heartbeats: `ripen deploy`'s automation marks
    # them Crashed (they would stay Running forever otherwise).
    _wait("the killed worker's flow runs marked Crashed",
          lambda: not set(running_at_kill) & set(_flow_runs(cluster, "RUNNING")), cluster,
          timeout=300)
    crashed = set(running_at_kill) & set(_flow_runs(cluster, "CRASHED"))
    assert crashed == set(running_at_kill), (running_at_kill, _flow_runs(cluster, "RUNNING"))
    time.sleep(2)  # a mail whose 250 came back is counted once the sink has stored it
    assert restarted.popen is not None
    assert restarted.popen.poll() is None, restarted.tail()

    # --- the report ------------------------------------------------------------------
    with cluster.db.connect() as connection:
        rows = connection.execute(text(
            "SELECT id, status, message_id, idempotency_key, last_error FROM mail_outbox"
        )).all()
        deliveries = connection.execute(text(
            "SELECT webhook_id, status FROM webhook_delivery")).all()
        handover_count = int(connection.execute(text("SELECT count(*) FROM handover")).scalar()
                             or 0)
        first_mails = int(connection.execute(text(
            "SELECT count(DISTINCT lead_id) FROM mail_outbox WHERE category = 'nurture'"
        )).scalar() or 0)
        skipped_leads = connection.execute(text(
            "SELECT count(*) FROM lead WHERE NOT EXISTS (SELECT 1 FROM mail_outbox m "
            "WHERE m.lead_id = lead.id AND m.category = 'nurture') AND NOT EXISTS "
            "(SELECT 1 FROM handover h WHERE h.lead_id = lead.id)")).scalar()
        held = connection.execute(text(OPEN_MAIL.replace("<= now()", "> now()"))).scalar()
    received = _received_message_ids(cluster.sink)
    rows = [Mail(row.id, row.status, row.message_id.strip("<>"), row.idempotency_key,
                 row.last_error) for row in rows]
    by_status = Counter(row.status for row in rows)
    unknown = [row for row in rows if row.status == "unknown"]
    unknown_ids = {row.message_id for row in unknown}
    lost_mails = [row for row in rows if row.status == "sent" and received[row.message_id] == 0]
    not_final = [row for row in rows if row.status not in ("sent", "unknown", "pending")]
    duplicates = {mid: n for mid, n in received.items() if n > 1 and mid not in unknown_ids}
    unknown_received = sum(1 for mid in unknown_ids if received[mid])
    hook_ids = cluster.receiver.ids()
    delivered_hooks = {d.webhook_id for d in deliveries if d.status == "delivered"}
    lost_hooks = [d for d in deliveries if d.webhook_id not in set(hook_ids)]
    shared_ids = {wid: n for wid, n in Counter(hook_ids).items() if n > 1}
    figure(f"\ndeployment mode: {LEADS} leads due, {CONTACT_REQUESTS} contact requests "
          f"({handovers} fast-lane handovers, {handover_count} in all); 2 workers, "
          f"{victim[0].name} killed with SIGKILL ({killed} processes) after "
          f"{mails_at_kill} mails, then restarted")
    figure(f"mail outbox: {dict(by_status)} ({held} held until sales lets go); leads with "
          f"a journey mail: {first_mails}, without one and not with sales: {skipped_leads}")
    figure(f"flow runs running when the worker was killed: {len(running_at_kill)}, marked "
           f"Crashed by the heartbeat automation: {len(crashed)}")
    figure(f"mails lost: {len(lost_mails)}; duplicates: {len(duplicates)}; rows left unknown: "
          f"{len(unknown)} ({unknown_received} of them received)")
    for row in unknown:
        figure(f"  unknown: outbox {row.id} {row.idempotency_key} — {row.last_error}")
    figure(f"webhooks: {len(deliveries)} deliveries, {len(delivered_hooks)} delivered, "
          f"lost {len(lost_hooks)}, duplicate deliveries sharing a webhook-id: "
          f"{sum(n - 1 for n in shared_ids.values())}")
    cluster.receiver.verified()  # every request signed as Standard Webhooks requires

    assert skipped_leads == 0
    assert first_mails >= LEADS - handover_count
    assert not lost_mails, lost_mails[:5]
    assert not not_final, not_final[:5]
    assert not duplicates, duplicates
    assert not lost_hooks
    assert len(delivered_hooks) == len(deliveries) >= handover_count
    assert handover_count >= handovers
