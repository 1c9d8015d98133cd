"""The scenarios. Each runs the real ripen code path and its baseline in the same process
and returns its figures; ``bench.run`` starts one process per scenario and database."""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from bench import baseline
from bench.common import (
    NOW,
    RECYCLE_COPIES,
    app,
    bench_config,
    fresh_database,
    peak_rss_mib,
    smtp_sink,
)
from bench.data import make_due, seed, spread_due
from bench.scale_out import s6_scale_out
from engine.store.tables import Enrollment, Lead, TrackedLink
from engine.tokens import Purpose

Figures = dict[str, Any]

S1_LEADS, S1_DUE, S1_BIG, S1_BIG_DUE = 100_000, 10_000, 1_000_000, 100_000
NAIVE_SAMPLE = 1_000   # the per-lead baseline runs on a sample; its rate is per lead


def _due_selection(ripen: Any) -> float:
    """Seconds to find what is due and claim it (rolled back: nothing changes); the median
    of three runs, the first of which reads from disk."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        with ripen.uow() as uow:
            due = uow.due_step_counts(now=ripen.clock())
            for journey_id, version, step_id, _ in due:
                uow.claim_due(journey_id=journey_id, version=version, step_id=step_id,
                              now=ripen.clock(), limit=S1_DUE)
            uow.session.rollback()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def s1_tick(backend: str) -> Figures:
    """100k leads, 10k due: one tick (decide, render, write the outbox, send, commit); the
    due selection at 1M leads against 100k; then a tick at 1M leads with 100k due (its
    memory is a target)."""
    figures: Figures = {}
    with smtp_sink() as sink:
        with fresh_database(backend) as engine:
            ripen = app(engine, sink.port)
            seed(ripen, leads=S1_LEADS, due=S1_DUE)
            selection = _due_selection(ripen)
            with ripen.uow() as uow:
                leads = list(uow.session.exec(select(Lead).order_by(Lead.id).limit(S1_DUE)))
                sample = [e.id for e in uow.session.exec(
                    select(Enrollment).where(Enrollment.due_at <= NOW)  # type: ignore[operator]
                    .order_by(Enrollment.id).limit(NAIVE_SAMPLE))]
            started = time.perf_counter()
            reports = ripen.journeys.tick()  # decides, renders, writes and sends each batch
            leftover = ripen.send_mail()      # what the tick flow's last task would drain
            elapsed = time.perf_counter() - started
            counts = sum((r.counts for r in reports), Counter())
            mail = sum((r.mail for r in reports), Counter()) + leftover
            assert counts["sent"] == S1_DUE, counts
            assert mail == Counter(sent=S1_DUE), mail
            journey = ripen.config.journeys["monika-marketing"]
            step = journey.steps[journey.entry[next(iter(journey.entry))]]
            raw = baseline.raw_pipeline(ripen, leads, sink.port, step.send.content,  # type: ignore[union-attr]
                                        step.send.template)  # type: ignore[union-attr]
        # The naive loop on its own fresh database (the sample is due there too).
        with fresh_database(backend) as engine:
            ripen = app(engine, sink.port)
            seed(ripen, leads=S1_LEADS // 10, due=NAIVE_SAMPLE)
            with ripen.uow() as uow:
                sample = [e.id for e in uow.session.exec(
                    select(Enrollment).where(Enrollment.due_at <= NOW))]  # type: ignore[operator]
            naive = baseline.naive_tick(ripen, [i for i in sample if i is not None], sink.port)
        with fresh_database(backend) as engine:
            ripen = app(engine, sink.port)
            seed(ripen, leads=S1_BIG, due=S1_DUE)
            big_selection = _due_selection(ripen)
            # Then every written lead due (the database's 900k copies stay later): the tick
            # at 1M leads with 100k due, whose memory is the target.
            big_due = make_due(ripen, S1_BIG_DUE)
            started = time.perf_counter()
            reports = ripen.journeys.tick()
            leftover = ripen.send_mail()
            big_elapsed = time.perf_counter() - started
            big_mail = sum((r.mail for r in reports), Counter()) + leftover
            assert big_mail == Counter(sent=big_due), big_mail
    rate = S1_DUE / elapsed
    figures["S1 tick"] = {
        "value": rate, "unit": "leads/s", "baseline": NAIVE_SAMPLE / naive,
        "baseline_name": "per-lead unit of work, connection per mail",
        "limit": S1_DUE / raw, "limit_name": "raw render+SMTP, same transport",
        "targets": {"value": 3000, "ratio": 15, "share": 0.8}, "smtp": sink.name}
    figures["S1 due selection 1M/100k"] = {
        "value": big_selection / selection, "unit": "× (1M vs 100k)",
        "detail": f"{selection * 1000:.0f} ms at 100k, {big_selection * 1000:.0f} ms at 1M",
        "targets": {"max": 2.0}}
    figures["S1 tick 1M leads, 100k due"] = {
        "value": big_due / big_elapsed, "unit": "leads/s",
        "detail": f"{big_due:,} mails in {big_elapsed:.0f} s; the peak RSS is the whole S1 "
                  "process's (its three databases, this tick included)",
        "targets": {"rss_max": 500e6 / 2**20}, "smtp": sink.name}
    return figures


def s2_render_send(backend: str) -> Figures:
    """50k personalised mails rendered and submitted (no database: run once)."""
    count, sample = 50_000, 2_000
    with smtp_sink() as sink, fresh_database("sqlite") as engine:
        ripen = app(engine, sink.port)
        seed(ripen, leads=count, due=0)
        with ripen.uow() as uow:
            leads = list(uow.session.exec(select(Lead).order_by(Lead.id)))
        journey = ripen.config.journeys["peter-produktionsleiter"]
        step = journey.steps[journey.entry[next(iter(journey.entry))]]
        content, template = step.send.content, step.send.template  # type: ignore[union-attr]
        ours = baseline.raw_pipeline(ripen, leads, sink.port, content, template)
        textbook = baseline.email_message_send(ripen, leads[:sample], sink.port, content,
                                               template)
    return {"S2 render+send": {
        "value": count / ours, "unit": "mails/s", "baseline": sample / textbook,
        "baseline_name": "EmailMessage, connection per mail",
        "targets": {"value": 3000, "ratio": 8}, "smtp": sink.name}}


def s3_events(backend: str) -> Figures:
    """200k events (Zipf over leads) through batch ingestion to scores, MQL detection and
    handover rows; baseline: the same path one transaction per event, on a sample."""
    from engine.events import NewEvent

    leads, events, batch_size, sample = 20_000, 200_000, 1_000, 1_000
    rng = random.Random(3)
    weights = [1 / (rank + 1) for rank in range(leads)]
    with smtp_sink() as sink, fresh_database(backend) as engine:
        ripen = app(engine, sink.port)
        seed(ripen, leads=leads, due=0)
        content = [c.id for c in ripen.config.content.values() if not c.fast_lane]
        picks = rng.choices(range(1, leads + 1), weights=weights, k=events + sample)
        made = [NewEvent(lead_id=lead_id, type=rng.choice(["click", "download", "visit"]),
                         content_id=rng.choice(content), source="bench",
                         idempotency_key=f"bench:{n}") for n, lead_id in enumerate(picks)]
        batches = []
        started = time.perf_counter()
        for start in range(0, events, batch_size):
            before = time.perf_counter()
            ripen.journeys.record_events(made[start:start + batch_size])
            batches.append(time.perf_counter() - before)  # committed: scores visible
        elapsed = time.perf_counter() - started
        before = time.perf_counter()
        for new in made[events:]:
            ripen.journeys.record_events([new])
        single = time.perf_counter() - before
        with ripen.uow() as uow:
            handovers = len(uow.session.exec(select(Lead).where(
                Lead.sales_stage == "MQL")).all())  # type: ignore[arg-type]
    batches.sort()
    p99 = batches[int(len(batches) * 0.99)]
    return {"S3 events": {
        "value": events / elapsed, "unit": "events/s", "baseline": sample / single,
        "baseline_name": "one transaction per event", "p99": p99,
        "detail": f"p99 event→score visible ≤ {p99:.2f} s "
                  f"(batches of {batch_size}); {handovers} handovers over {leads:,} leads, "
                  f"{events:,} events",
        "targets": {"value": 20_000, "ratio": 15, "p99": 1.0}}}


def s5_fast_lane(backend: str) -> Figures:
    """Contact requests while a 10k-due tick runs: request → signed webhook received."""
    import httpx
    import uvicorn

    from bench.common import bench_config
    from engine.webhooks import new_secret
    from ripen.api.app import create_app
    from tests.receiver import running

    requests = 200
    secret = new_secret()
    with smtp_sink() as sink, running(secret) as receiver, fresh_database(backend) as engine:
        config = bench_config(webhook_url=receiver.url)
        ripen = app(engine, sink.port, config=config,
                    environ={config.sla.webhooks[0].secret_env: secret})
        seed(ripen, leads=S1_LEADS // 5, due=S1_DUE)
        with ripen.uow() as uow:
            targets = list(uow.session.exec(select(Lead).where(
                Lead.id > S1_LEADS // 5 - requests)))  # type: ignore[operator]
        server = uvicorn.Server(uvicorn.Config(create_app(ripen), host="127.0.0.1", port=0,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        tick = threading.Thread(target=lambda: (ripen.journeys.tick(), ripen.send_mail()))
        tick.start()
        sent_at: dict[str, float] = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for lead in targets:
                token = ripen.tokens.dumps(Purpose.FAST_LANE, lead.public_id,
                                           now=ripen.clock())
                sent_at[lead.public_id] = time.monotonic()
                client.post(f"/fast-lane/{token}")
                time.sleep(0.01)
        deadline = time.monotonic() + 120
        while len(receiver.requests) < len(targets) and time.monotonic() < deadline:
            time.sleep(0.1)
        tick.join()
        server.should_exit = True
        thread.join(timeout=10)
        payloads = receiver.verified()
    received = {p["data"]["lead"]["id"]: r.at for p, r in zip(payloads, receiver.requests,
                                                                strict=True)}
    latencies = sorted(received[k] - sent_at[k] for k in received if k in sent_at)
    lost = len(targets) - len(latencies)
    p50 = statistics.median(latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    return {"S5 fast lane p95": {
        "value": p95, "unit": "s", "detail": f"p50 {p50:.3f} s over {len(latencies)} "
                                            f"requests during a 10k-due tick; {lost} missing",
        "targets": {"max": 5.0}}}


def _server_cpu() -> float:
    """CPU seconds used so far by the Prefect server processes this process started (the
    test harness runs it as a child): a task run's cost is paid there too."""
    total = 0.0
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == me and b"prefect.server.api.server" in command:
            total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _settled_server_cpu() -> float:
    """The server's CPU once it has worked off what the flow runs sent it (events are
    delivered asynchronously)."""
    before = _server_cpu()
    while True:
        time.sleep(0.5)
        now = _server_cpu()
        if now - before < 0.02:
            return now
        before = now


@contextmanager
def _engine_time(ripen: Any) -> Iterator[list[float]]:
    """Seconds during which at least one engine call the tick flow's tasks make (on
    ``ripen``, the tick's records) was running — the union of their intervals, as journeys
    run concurrently — put into the yielded one-element list when the block ends."""
    import flows.tick

    spent = [0.0]
    intervals: list[tuple[float, float]] = []
    lock = threading.Lock()

    def timed(call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                with lock:
                    intervals.append((started, time.perf_counter()))
        return run

    owners = [(ripen.journeys, ("go_live", "run_step", "slowest_case", "plan")),
              (ripen.handovers, ("qualify_due",)), (ripen, ("send_webhooks", "send_mail"))]
    modules = [(flows.tick.runs, ("started", "finished")), (flows.tick.quarantine, ("counts",))]
    for owner, names in owners:
        for name in names:
            setattr(owner, name, timed(getattr(owner, name)))
    originals = {(module, name): getattr(module, name) for module, names in modules
                 for name in names}
    for (module, name), call in originals.items():
        setattr(module, name, timed(call))
    try:
        yield spent
    finally:
        for (module, name), call in originals.items():
            setattr(module, name, call)
        for owner, names in owners:
            for name in names:
                delattr(owner, name)
        covered, reach = 0.0, float("-inf")
        for start, end in sorted(intervals):
            if end > reach:
                covered += end - max(start, reach)
                reach = end
        spent[0] = covered


def s4_prefect(backend: str) -> Figures:
    """S1 as the real tick flow run, its 10k due leads spread over 20 journeys (the three
    persona journeys and 17 copies of the recycling journey), each journey a flow run of its
    own: Prefect's share of the tick's wall time is the time no engine call of its tasks was
    running (measured in the same run), and divided by the journeys it is the cost of a
    journey flow run; the same tick without Prefect is shown beside it.
    And a one-task-per-lead flow (the design we refuse) against it, per lead — counting the
    Prefect server's CPU as well as the wall time of the flow itself."""
    from prefect import flow, task
    from prefect.testing.utilities import prefect_test_harness

    from flows import runtime
    from flows.tick import run_tick

    per_lead_sample = 2_000
    with smtp_sink() as sink, prefect_test_harness(server_startup_timeout=120):
        with fresh_database(backend) as engine:  # warm-up: the first flow run builds caches
            ripen = app(engine, sink.port)
            seed(ripen, leads=2_000, due=100)
            runtime.use(ripen)
            run_tick(NOW)
        twenty = bench_config(recycle_copies=RECYCLE_COPIES)
        copies = [f"wiedervorlage-{n}" for n in range(2, 2 + RECYCLE_COPIES)]
        with fresh_database(backend) as engine:
            ripen = app(engine, sink.port, config=twenty)
            seed(ripen, leads=S1_LEADS, due=S1_DUE)
            spread_due(ripen, copies)
            started = time.perf_counter()
            ripen.journeys.tick()
            ripen.send_mail()
            plain = time.perf_counter() - started
        with fresh_database(backend) as engine:
            ripen = app(engine, sink.port, config=twenty)
            seed(ripen, leads=S1_LEADS, due=S1_DUE)
            spread_due(ripen, copies)
            runtime.use(ripen)
            server_before = _settled_server_cpu()
            with _engine_time(ripen) as engine_time:
                started = time.perf_counter()
                summary = run_tick(NOW)
                flowed = time.perf_counter() - started
            in_engine = engine_time[0]
            flowed_server = _settled_server_cpu() - server_before
            journey_runs = len(summary["journeys"])
            assert journey_runs == 3 + RECYCLE_COPIES, summary["journeys"].keys()

            with ripen.uow() as uow:
                left = len(uow.session.exec(select(Enrollment).where(
                    Enrollment.due_at <= NOW)).all())  # type: ignore[operator]
            assert left == 0, left
        with fresh_database(backend) as engine:
            ripen = app(engine, sink.port)
            seed(ripen, leads=per_lead_sample * 5, due=per_lead_sample)
            runtime.use(ripen)
            journeys = {j.id: j for j in ripen.config.journeys.values()}

            @task(name="one-lead")
            def one_lead(enrollment_id: int) -> None:
                """The refused design: a task run per lead (batch of one)."""
                with ripen.uow() as uow:
                    enrollment = uow.session.get(Enrollment, enrollment_id)
                    assert enrollment is not None
                    journey_id, step_id = enrollment.journey_id, enrollment.step_id
                ripen.journeys.run_step(journeys[journey_id], step_id, limit=1)

            @flow(name="bench-task-per-lead")
            def per_lead(ids: list[int]) -> None:
                for enrollment_id in ids:
                    one_lead(enrollment_id)

            with ripen.uow() as uow:
                ids = [e.id for e in uow.session.exec(select(Enrollment).where(
                    Enrollment.due_at <= NOW)) if e.id is not None]  # type: ignore[operator]
            server_before = _settled_server_cpu()
            started = time.perf_counter()
            per_lead(ids)
            per_lead_wall = time.perf_counter() - started
            per_lead_server = _settled_server_cpu() - server_before
            ripen.send_mail()
        runtime.use(None)
    share = (flowed - in_engine) / flowed
    batch_cost = (flowed + flowed_server) / S1_DUE
    lead_cost = (per_lead_wall + per_lead_server) / len(ids)
    return {"S4 Prefect share of a tick (20 journeys)": {
        "value": share * 100, "unit": "%",
        "detail": f"tick flow {flowed:.2f} s with {journey_runs} journey flow runs; the "
                  f"engine's calls ran during {in_engine:.2f} s of it; the same tick without "
                  f"Prefect (another run) {plain:.2f} s; Prefect server CPU for the tick flow "
                  f"{flowed_server:.2f} s",
        "targets": {"max": 10.0}},
        "S4 Prefect cost per journey flow run": {
        "value": (flowed - in_engine) / journey_runs * 1000, "unit": "ms",
        "detail": f"the tick's wall time outside the engine, per journey: its flow run, its "
                  f"step tasks and its artifact; Prefect server CPU "
                  f"{flowed_server / journey_runs * 1000:.0f} ms per journey"},
        "S4 task per lead (slower per lead)": {
        "value": lead_cost / batch_cost, "unit": "×",
        "detail": f"a task per lead: {per_lead_wall / len(ids) * 1000:.1f} ms wall + "
                  f"{per_lead_server / len(ids) * 1000:.1f} ms Prefect server CPU per lead; "
                  f"the batch-shaped tick flow: {batch_cost * 1000:.2f} ms per lead "
                  f"(wall + server)",
        "targets": {"value": 50}}}


WORKBENCH_RUNS = 5


def s7_workbench(backend: str) -> Figures:
    """The workbench's pages on 100k leads after a tick that sent 10k mails (a tenth of
    them clicked): the median of five requests per page, the slowest page against 300 ms;
    ``/health`` (one query) is the floor of a request through the same app. The funnel page
    shows the report the maintenance run keeps: its counting is timed apart (the detail)."""
    from fastapi.testclient import TestClient

    from engine import kept
    from engine.tracking import follow
    from ripen.api.app import create_app

    with smtp_sink() as sink, fresh_database(backend) as engine:
        ripen = app(engine, sink.port)
        seed(ripen, leads=S1_LEADS, due=S1_DUE)
        ripen.journeys.tick()
        ripen.send_mail()
        with ripen.uow() as uow:
            tokens = [link.token_id for link in uow.session.exec(
                select(TrackedLink).where(TrackedLink.kind == "content")  # type: ignore[arg-type]
                .order_by(TrackedLink.id).limit(S1_DUE // 10))]
            lead = uow.session.exec(select(Lead).order_by(Lead.id)).first()
        for token in tokens:
            follow(ripen.journeys, ripen.tokens, ripen.tokens.dumps(
                Purpose.CLICK, token, now=NOW), user_agent="Mozilla/5.0 Firefox/140", ip=None)
        assert lead is not None
        with ripen.uow() as uow:  # what the maintenance run does every 15 minutes
            counted = kept.keep_funnel(uow, ripen.clock(), time.perf_counter).seconds
        client = TestClient(create_app(ripen), base_url="https://ripen.example",
                            headers={"authorization": f"Bearer {ripen.settings.api_keys[0]}"})
        journey = ripen.config.journeys["monika-marketing"]
        pages = {"health": "/health", "journeys": "/workbench",
                 "journey": f"/workbench/journeys/{journey.id}",
                 "step": f"/workbench/journeys/{journey.id}/steps/"
                         f"{journey.order[1]}",
                 "search": "/workbench/leads?q=lead4711",
                 "lead": f"/workbench/leads/{lead.public_id}",
                 "content": "/workbench/content", "funnel": "/workbench/funnel"}
        times: dict[str, float] = {}
        for name, path in pages.items():
            samples = []
            for _ in range(WORKBENCH_RUNS):
                started = time.perf_counter()
                answer = client.get(path)
                samples.append(time.perf_counter() - started)
                assert answer.status_code == 200, (path, answer.status_code)
            times[name] = statistics.median(samples) * 1000
    slowest = max((n for n in times if n != "health"), key=times.__getitem__)
    return {"S7 workbench slowest page": {
        "value": times[slowest], "unit": "ms", "baseline": times["health"],
        "baseline_name": "/health through the same app",
        "detail": f"slowest: {slowest}; " + ", ".join(f"{n} {t:.0f} ms"
                                                     for n, t in times.items())
                  + f"; the funnel the page shows was counted by the maintenance run in "
                    f"{counted * 1000:.0f} ms",
        "targets": {"max": 300}}}


SCENARIOS = {"S1": s1_tick, "S2": s2_render_send, "S3": s3_events, "S4": s4_prefect,
             "S5": s5_fast_lane, "S6": s6_scale_out, "S7": s7_workbench}
ONCE = {"S2"}  # no database in the measured path
ONLY = {"S6": "postgresql"}  # deployment mode needs PostgreSQL


def run(name: str, backend: str) -> Figures:
    figures = SCENARIOS[name](backend)
    for line in figures.values():
        line["backend"] = "-" if name in ONCE else backend
        line["peak_rss_mib"] = peak_rss_mib()
    return figures


__all__ = ["NOW", "SCENARIOS", "run", "timedelta"]
