"""Deployment mode's registration on a real (temporary) Prefect server: the deployments'
flow runs send heartbeats, and an automation crashes a run whose worker died."""

from __future__ import annotations

import asyncio
from datetime import timedelta

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
    assert ensure_crash_automation() is True
    assert ensure_crash_automation() is False  # a second deploy keeps the one there is

    async def read() -> tuple[list[dict[str, object]], Automation]:
        async with get_client() as client:
            deployments = [await client.read_deployment(r.deployment_id) for r in registered]
        automation = await Automation.aread(name=CRASH_AUTOMATION)
        return [d.job_variables for d in deployments], automation

    variables, automation = asyncio.run(read())
    assert variables == [{"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}] * 2
    trigger = automation.trigger
    assert trigger.after == {"prefect.flow-run.heartbeat"}  # type: ignore[union-attr]
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
