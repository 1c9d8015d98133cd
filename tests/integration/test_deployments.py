"""Deployment mode's registration on a real (temporary) Prefect server: the deployments'
flow runs send heartbeats, and an automation crashes a run whose worker died."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from prefect.automations import Automation
from prefect.client.orchestration import get_client

from engine.settings import load_settings
from flows.deployments import CRASH_AUTOMATION, ensure_crash_automation, ensure_pool, register


def test_deploy_enables_heartbeats_and_crashes_runs_of_dead_workers(
        prefect_harness: None) -> None:
    """`ripen deploy` registers both flows with heartbeats every 30 s and creates, once, the
    automation that makes a run Crashed after 90 s without one."""
    ensure_pool("heartbeat-test")
    registered = register(load_settings(), pool="heartbeat-test")
    assert ensure_crash_automation() == "created"
    assert ensure_crash_automation() == "exists"  # a second deploy keeps the one there is

    async def downgrade() -> None:  # as an older ripen created it: armed by heartbeats only
        older = await Automation.aread(name=CRASH_AUTOMATION)
        older.trigger.after = {"prefect.flow-run.heartbeat"}  # type: ignore[union-attr]
        await older.aupdate()

    asyncio.run(downgrade())
    assert ensure_crash_automation() == "updated"

    async def read() -> tuple[list[dict[str, object]], Automation]:
        async with get_client() as client:
            deployments = [await client.read_deployment(r.deployment_id) for r in registered]
        automation = await Automation.aread(name=CRASH_AUTOMATION)
        return [d.job_variables for d in deployments], automation

    variables, automation = asyncio.run(read())
    assert variables == [{"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}] * 2
    trigger = automation.trigger
    # armed by the server's Running event too: a run killed before its first heartbeat
    # reached the server is still crashed
    # and by a worker taking the run: one killed before it started the run left it Pending
    assert trigger.after == {"prefect.flow-run.Pending",  # type: ignore[union-attr]
                             "prefect.flow-run.Running", "prefect.flow-run.heartbeat"}
    assert "prefect.flow-run.Running" in trigger.expect  # type: ignore[union-attr]
    assert trigger.match_related.get("prefect.resource.name") == [  # type: ignore[union-attr]
        "ripen-tick", "ripen-maintenance"]
    assert trigger.within == timedelta(seconds=90)  # type: ignore[union-attr]
    [action] = automation.actions
    assert action.type == "change-flow-run-state"
    assert action.state.value == "CRASHED"  # type: ignore[union-attr]


def test_journey_runs_left_running_under_an_ended_tick_are_marked_crashed(
        prefect_harness: None) -> None:
    """A worker killed mid-tick leaves its journey runs Running (they send no heartbeats);
    the maintenance run's check marks those under an ended tick Crashed, and leaves a
    journey run of a live tick alone."""
    from prefect import Flow, Task
    from prefect.states import Crashed, Running

    from flows.tick import crash_orphaned_journey_runs

    def nothing() -> None:
        return None

    tick, journey = Flow(nothing, name="ripen-tick"), Flow(nothing, name="journey:orphan")
    with get_client(sync_client=True) as client:
        runs = {}
        for name, state in (("dead", Crashed()), ("live", Running())):
            parent = client.create_flow_run(tick, state=state)
            task_run = client.create_task_run(Task(nothing, name=f"journey:orphan-{name}"),
                                              flow_run_id=parent.id, dynamic_key=name)
            runs[name] = client.create_flow_run(journey, parent_task_run_id=task_run.id,
                                                state=Running())
        assert crash_orphaned_journey_runs.fn() == 1
        states = {name: client.read_flow_run(run.id).state for name, run in runs.items()}
    assert states["dead"] is not None
    assert states["dead"].type.value == "CRASHED"
    assert states["dead"].message == "its tick ended Crashed: the worker died"
    assert states["live"] is not None
    assert states["live"].type.value == "RUNNING"


def test_a_run_killed_before_its_first_heartbeat_is_crashed(prefect_harness: None) -> None:
    """The automation is armed by the server's own Running event: a tick run that never sent
    a heartbeat (its worker was killed right after it started) is crashed after the
    silence, and so is one a worker took (Pending) but never started; a journey run (no
    heartbeats by design) is left to the maintenance run, and a run that starts in time is
    not crashed for its Pending."""
    import time

    from prefect import Flow
    from prefect.states import Completed, Pending, Running

    from flows.deployments import crash_automation

    def nothing() -> None:
        return None

    async def arm() -> Automation:
        automation = crash_automation(silence=timedelta(seconds=10))  # the least
        automation.name = "test: crash runs of dead workers"
        return await automation.acreate()

    automation = asyncio.run(arm())
    try:
        with get_client(sync_client=True) as client:
            tick = client.create_flow_run(Flow(nothing, name="ripen-tick"))
            taken = client.create_flow_run(Flow(nothing, name="ripen-tick"))
            started = client.create_flow_run(Flow(nothing, name="ripen-maintenance"))
            journey = client.create_flow_run(Flow(nothing, name="journey:silent"))
            for run in (tick, journey):
                client.set_flow_run_state(run.id, Running(), force=True)
            for run in (taken, started):
                client.set_flow_run_state(run.id, Pending(), force=True)
            client.set_flow_run_state(started.id, Running(), force=True)
            client.set_flow_run_state(started.id, Completed(), force=True)
            deadline = time.monotonic() + 90
            states = {}
            while time.monotonic() < deadline:
                states = {name: client.read_flow_run(run.id).state
                          for name, run in (("tick", tick), ("taken", taken))}
                if all(s is not None and s.is_crashed() for s in states.values()):
                    break
                time.sleep(1)
            for state in states.values():
                assert state is not None
                assert state.type.value == "CRASHED", states
                assert "worker died" in (state.message or "")
            journey_state = client.read_flow_run(journey.id).state
            assert journey_state is not None
            assert journey_state.is_running()
            started_state = client.read_flow_run(started.id).state
            assert started_state is not None
            assert started_state.is_completed()
    finally:
        asyncio.run(automation.adelete())


@pytest.mark.parametrize("hash_seed", ["0", "7", "13"])
def test_an_unchanged_automation_read_back_is_the_same_whatever_the_string_hashing(
        hash_seed: str) -> None:
    """The automation as the server returns it (its event sets as JSON lists) has the shape
    of the one built here, so a second `ripen deploy` says "exists". Its sets used to be
    compared as JSON lists, whose order follows the process's string hashing: under
    PYTHONHASHSEED=7 an unchanged automation was "updated" (and CI failed once)."""
    script = ("from prefect.automations import Automation\n"
              "from flows.deployments import _shape, crash_automation\n"
              "built = crash_automation()\n"
              "read = Automation.model_validate(built.model_dump(mode='json'))\n"
              "print(_shape(read) == _shape(built))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=120,
                          check=False)
    assert done.stdout.strip() == "True", done.stderr[-2000:]
