"""Any exception from a node fails that node and `on_failure` applies: no workflow task retried
forever, no closed execution showing a node "running"."""

from collections.abc import Callable
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from activities.dag_final_state import save_final_state
from contracts.dag import ExecutionStatus, NodeStatus
from core.db import session_scope
from core.settings import get_settings
from storage import final_states
from tests.workflows.dag_fakes import fake_noop, fake_record_run_usage, new_queue, node, spec, start
from worker import WORKFLOW_FAILURE_TYPES
from workflows.dag import DagWorkflow


@activity.defn(name="garbled")
async def fake_garbled(args: dict[str, Any]) -> dict[str, Any]:
    """Returns something that is not a ToolResult: a bug in a tool, not a tool failure."""
    return {"output": 1, "usage": "not a usage record"}


@pytest.mark.parametrize("policy", ["fail", "continue"])
async def test_a_node_whose_result_does_not_decode_fails_and_on_failure_applies(
    client: Client, policy: str
) -> None:
    queue = new_queue()
    dag = spec(
        node("bad", "garbled"),
        node("after", depends_on=["bad"]),
        node("independent"),
        on_failure=policy,
    )
    activities: list[Callable[..., Any]] = [fake_garbled, fake_noop, fake_record_run_usage, save_final_state]
    async with Worker(client, task_queue=queue, workflows=[DagWorkflow], activities=activities):
        handle = await start(client, queue, dag)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        status = await handle.query(DagWorkflow.status)
    nodes = {n.id: n for n in status.nodes}
    assert status.execution_status == ExecutionStatus.failed
    assert nodes["bad"].status == NodeStatus.failed
    assert "ValidationError" in (nodes["bad"].error or "")
    assert nodes["after"].status == NodeStatus.skipped
    assert all(n.status != NodeStatus.running for n in status.nodes)


async def test_a_bug_in_the_run_loop_fails_the_execution_with_no_node_left_running(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from temporalio.worker import UnsandboxedWorkflowRunner

    from tests.workflows.dag_fakes import fake_blocker, fake_record_run_usage, gate
    from workflows.dag_graph import DagGraph

    original = DagGraph.process_finished

    def buggy(self: DagGraph) -> None:
        original(self)
        if self.nodes["a"].status == NodeStatus.succeeded and self.nodes["b"].status == NodeStatus.running:
            raise RuntimeError("boom")

    monkeypatch.setattr(DagGraph, "process_finished", buggy)
    queue = new_queue()
    gate("bug-b")
    dag = spec(node("a"), node("b", "blocker", input={"key": "bug-b"}), node("c", depends_on=["b"]))
    async with Worker(
        client,
        task_queue=queue,
        workflows=[DagWorkflow],
        activities=[fake_noop, fake_blocker, fake_record_run_usage, save_final_state],
        # The sandbox would re-import DagGraph and miss the patch.
        workflow_runner=UnsandboxedWorkflowRunner(),
        workflow_failure_exception_types=WORKFLOW_FAILURE_TYPES,
    ):
        handle = await start(client, queue, dag)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        status = await handle.query(DagWorkflow.status)
    assert failed.value.cause.type == "InternalError"  # type: ignore[attr-defined]
    assert status.execution_status == ExecutionStatus.failed
    nodes = {n.id: n.status for n in status.nodes}
    assert nodes == {"a": NodeStatus.succeeded, "b": NodeStatus.cancelled, "c": NodeStatus.skipped}
    async with session_scope(get_settings()) as session:  # what readers get without a replay
        saved = await final_states.load(session, handle.id, handle.result_run_id or "")
    assert saved == status
