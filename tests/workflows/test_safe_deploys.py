"""Safe deploys: a release whose workflow code cannot replay a run holds that run (its workflow task
retried, the hold shown in the run's status and in /health/ready) and a rollback lets the same run
go on; a pinned run finishes on the build it started on while new runs start on the current one;
`python -m cli replay` checks a release against the namespace's histories."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkerDeploymentVersion

from cli.__main__ import main as cli_main
from core import versioning
from core.replay import move_replayable, replay_query
from core.settings import Settings
from services.held_runs import CANNOT_REPLAY
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_node
from tests.conftest import api_client
from tests.workflows.replay_breaking import DagWorkflowWithATimerFirst
from worker import WORKFLOW_FAILURE_TYPES, build_replayer, build_worker

GATED = {"nodes": [{"id": "gate", "tool": "noop", "input": {"value": 1}, "requires_approval": True}]}


async def eventually(check: Callable[[], Awaitable[Any]], what: str, *, within_s: float = 60) -> Any:
    """Poll until `check` answers something truthy (bounded)."""
    deadline = time.monotonic() + within_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.5)


def test_no_failure_type_is_a_superclass_of_the_non_determinism_error() -> None:
    from temporalio.workflow import NondeterminismError

    assert not any(issubclass(NondeterminismError, kind) for kind in WORKFLOW_FAILURE_TYPES)


async def test_a_release_that_cannot_replay_holds_the_run_and_a_rollback_finishes_it(
    client: Client, settings: Settings
) -> None:
    queued = settings.model_copy(update={"task_queue": f"deploy-{uuid.uuid4().hex[:8]}"})
    async with api_client(queued) as api:
        async with build_worker(client, queued):
            dag = await make_dag(api, GATED)
            execution_id = await start(api, dag["id"])
            await wait_node(api, execution_id, "gate", "waiting_approval")

        async with build_worker(client, queued, workflows=[DagWorkflowWithATimerFirst]):
            # The approval reaches a worker that cannot replay the run: refused, nothing lost.
            approval = await api.post(
                f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"}
            )
            assert approval.status_code == 503, approval.text
            assert CANNOT_REPLAY in approval.json()["detail"]

            async def held() -> dict[str, Any] | None:
                body = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
                return body if body.get("waiting_reason") == CANNOT_REPLAY else None

            body = await eventually(held, "the status to show the run held")
            assert body["status"] == "running"

            async def reported() -> dict[str, Any] | None:
                report = (await api.get("/health/ready")).json()
                return report if execution_id in report["checks"]["held_runs"].get("runs", []) else None

            report = await eventually(reported, "/health/ready to list the held run")
            assert report["checks"]["held_runs"]["ok"] is False
            assert "held_runs" in report["degraded"]
            description = await client.get_workflow_handle(execution_id).describe()
            assert description.status == WorkflowExecutionStatus.RUNNING  # held, not failed

        async with build_worker(client, queued):  # the rollback

            async def recovered() -> bool:
                body = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
                return body["waiting_reason"] is None and body["nodes"][0]["status"] == "waiting_approval"

            await eventually(recovered, "the held run to go on on the restored worker")
            answered = await api.post(
                f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"}
            )
            assert answered.status_code == 200, answered.text
            body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert body["waiting_reason"] is None


async def test_a_pinned_run_finishes_on_its_build_while_new_runs_start_on_the_current_one(
    client: Client, settings: Settings
) -> None:
    deployment = f"goalflow-{uuid.uuid4().hex[:8]}"
    versioned = settings.model_copy(
        update={
            "task_queue": f"pinned-{uuid.uuid4().hex[:8]}",
            "worker_versioning": True,
            "worker_deployment": deployment,
        }
    )
    async with api_client(versioned) as api, build_worker(client, versioned, build_id="old"):
        await versioning.set_current(client, WorkerDeploymentVersion(deployment, "old"))
        dag = await make_dag(api, GATED)
        old_run = await start(api, dag["id"])
        await wait_node(api, old_run, "gate", "waiting_approval")
        # The new release changes DagWorkflow so that it cannot replay the old run.
        async with build_worker(client, versioned, build_id="new", workflows=[DagWorkflowWithATimerFirst]):
            new = WorkerDeploymentVersion(deployment, "new")
            await versioning.set_current(client, new)
            new_run = await start(api, dag["id"])
            await wait_node(api, new_run, "gate", "waiting_approval")
            # The new build cannot replay the old run, so it stays where it is.
            release = build_replayer(versioned, workflows=[DagWorkflowWithATimerFirst])
            moved, kept = await move_replayable(client, release, new)
            assert [o.workflow_id for o in kept] == [old_run] and moved == []
            for run in (old_run, new_run):
                approved = await api.post(f"/api/v1/dag-executions/{run}/approve", json={"node_id": "gate"})
                assert approved.status_code == 200, approved.text
                assert (await wait_closed(api, run))["status"] == "succeeded"
    builds = {}
    for run in (old_run, new_run):
        info = (await client.get_workflow_handle(run).describe()).raw_description.workflow_execution_info
        builds[run] = info.versioning_info.deployment_version.build_id
    assert builds == {old_run: "old", new_run: "new"}


async def test_cli_replay_checks_this_code_against_the_namespace(
    client: Client, settings: Settings, capsys: Any
) -> None:
    queued = settings.model_copy(update={"task_queue": f"replay-{uuid.uuid4().hex[:8]}"})
    async with api_client(queued) as api, build_worker(client, queued):
        dag = await make_dag(api, {"nodes": [{"id": "a", "tool": "noop", "input": {"value": 1}}]})
        execution_id = await start(api, dag["id"])
        await wait_closed(api, execution_id)
    only_it = ["replay", "--since", "1h", "--query", f"WorkflowId = '{execution_id}'"]
    assert await asyncio.to_thread(cli_main, only_it) == 0
    assert "1 of 1 run(s) replay on this code" in capsys.readouterr().out
    # The same history against a release that cannot replay it: the run is named.
    breaking = build_replayer(settings, workflows=[DagWorkflowWithATimerFirst])
    [outcome] = await replay_query(client, breaking, f"WorkflowId = '{execution_id}'")
    assert outcome.workflow_id == execution_id and "Nondeterminism" in (outcome.error or "")
    with pytest.raises(SystemExit) as usage:
        cli_main(["replay", "--since", "0d"])
    assert usage.value.code == 2
