"""Any exception from a node fails that node and `on_failure` applies: no workflow task retried
forever, no closed execution showing a node "running"."""

from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from contracts.dag import ExecutionStatus, NodeStatus
from tests.workflows.dag_fakes import fake_noop, new_queue, node, spec, start
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
    async with Worker(
        client, task_queue=queue, workflows=[DagWorkflow], activities=[fake_garbled, fake_noop]
    ):
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
