"""People steering a DagWorkflow: resume after suspension, approvals, cancel, worker restarts,
reusing outputs of an earlier execution."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError

from contracts.dag import ApprovalDecision, DagStatus, ExecutionStatus, NodeOutput, ResumeRequest, RetrySpec
from tests.workflows.dag_fakes import CALLS, gate, make_worker, new_queue, node, spec, start
from workflows.dag import DagWorkflow

ONCE = RetrySpec(max_attempts=1)


async def wait_for(handle: WorkflowHandle[Any, Any], check: Callable[[DagStatus], bool]) -> DagStatus:
    for _ in range(200):
        status = await handle.query(DagWorkflow.status)
        if check(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition never met; last status {status}")


def node_status(status: DagStatus, node_id: str) -> str:
    return next(n.status for n in status.nodes if n.id == node_id)


async def test_suspend_then_patch_resumes_and_completes(client: Client) -> None:
    queue, key, fixed = new_queue(), new_queue(), new_queue()
    dag = spec(
        node("bad", "flaky", input={"key": key, "fail_times": 9}, retry=ONCE),
        node("after", "echo", input={"got": "{{nodes.bad.output}}"}, depends_on=["bad"]),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        status = await wait_for(handle, lambda s: s.execution_status == ExecutionStatus.suspended)
        assert status.suspended_node == "bad"
        with pytest.raises(WorkflowUpdateFailedError) as wrong:
            await handle.execute_update(DagWorkflow.resume, ResumeRequest(node_id="after", action="retry"))
        assert isinstance(wrong.value.cause, ApplicationError)
        assert wrong.value.cause.type == "NotSuspendedOnNode"
        await handle.execute_update(
            DagWorkflow.resume,
            ResumeRequest(node_id="bad", action="patch", input={"key": fixed, "fail_times": 0}),
        )
        result = await handle.result()
    assert result.status == ExecutionStatus.succeeded
    assert result.outputs["after"] == {"got": {"attempt": 1}}
    assert CALLS[key] == 1 and CALLS[fixed] == 1
    assert next(n for n in result.nodes if n.id == "bad").attempts == 2


async def test_suspend_then_retry_and_skip(client: Client) -> None:
    queue, key, other = new_queue(), new_queue(), new_queue()
    dag = spec(
        node("flaky", "flaky", input={"key": key, "fail_times": 1}, retry=ONCE),
        node("doomed", "flaky", input={"key": other, "fail_times": 9}, retry=ONCE, depends_on=["flaky"]),
        node("tail", depends_on=["doomed"]),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        await wait_for(handle, lambda s: s.suspended_node == "flaky")
        await handle.execute_update(DagWorkflow.resume, ResumeRequest(node_id="flaky", action="retry"))
        await wait_for(handle, lambda s: s.suspended_node == "doomed")
        await handle.execute_update(DagWorkflow.resume, ResumeRequest(node_id="doomed", action="skip"))
        result = await handle.result()
    assert {n.id: n.status for n in result.nodes} == {
        "flaky": "succeeded",
        "doomed": "skipped",
        "tail": "skipped",
    }
    assert CALLS[key] == 2


async def test_approval_by_update_and_signal_and_clear_errors_for_bad_targets(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("a"),
        node("gated", depends_on=["a"], requires_approval=True),
        node("gated2", requires_approval=True),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await handle.execute_update(DagWorkflow.approve, ApprovalDecision(node_id="nope"))
        assert isinstance(unknown.value.cause, ApplicationError)
        assert unknown.value.cause.type == "UnknownNode"
        status = await wait_for(handle, lambda s: node_status(s, "gated") == "waiting_approval")
        assert next(n for n in status.nodes if n.id == "gated").waiting_reason == "approval"
        with pytest.raises(WorkflowUpdateFailedError) as not_waiting:
            await handle.execute_update(DagWorkflow.approve, ApprovalDecision(node_id="a"))
        assert isinstance(not_waiting.value.cause, ApplicationError)
        assert not_waiting.value.cause.type == "NodeNotWaitingForApproval"
        await handle.execute_update(DagWorkflow.approve, ApprovalDecision(node_id="gated", comment="ok"))
        await wait_for(handle, lambda s: node_status(s, "gated2") == "waiting_approval")
        await handle.signal(DagWorkflow.approve_signal, ApprovalDecision(node_id="gated2"))
        result = await handle.result()
    assert result.status == ExecutionStatus.succeeded
    assert all(n.status == "succeeded" for n in result.nodes)


async def test_rejection_fails_the_node_and_on_failure_applies(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("gated", requires_approval=True),
        node("child", depends_on=["gated"]),
        node("free"),
        on_failure="continue",
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        await wait_for(handle, lambda s: node_status(s, "gated") == "waiting_approval")
        await handle.execute_update(
            DagWorkflow.reject, ApprovalDecision(node_id="gated", comment="not today")
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        status = await handle.query(DagWorkflow.status)
    nodes = {n.id: n for n in status.nodes}
    assert nodes["gated"].status == "failed" and nodes["gated"].error == "rejected: not today"
    assert nodes["child"].status == "skipped" and nodes["free"].status == "succeeded"


async def test_cancel_cancels_running_nodes_and_the_execution(client: Client) -> None:
    queue, key = new_queue(), new_queue()
    started, _release = gate(key)
    dag = spec(node("block", "blocker", input={"key": key}), node("after", depends_on=["block"]))
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        await asyncio.wait_for(started.wait(), 10)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        status = await handle.query(DagWorkflow.status)
    assert isinstance(failure.value.cause, CancelledError)
    assert status.execution_status == ExecutionStatus.cancelled
    assert {n.id: n.status for n in status.nodes} == {"block": "cancelled", "after": "cancelled"}


async def test_worker_killed_mid_node_resumes_without_rerunning_completed_nodes(client: Client) -> None:
    queue, first, block, last = new_queue(), new_queue(), new_queue(), new_queue()
    started, release = gate(block)
    dag = spec(
        node("first", "echo", input={"key": first}),
        node(
            "block",
            "blocker",
            input={"key": block},
            depends_on=["first"],
            retry=RetrySpec(max_attempts=5, initial_interval_s=0.1),
        ),
        node("last", "echo", input={"key": last}, depends_on=["block"]),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        await asyncio.wait_for(started.wait(), 10)
    # The first worker is gone while `block` runs; a new one picks up workflow and activity.
    started.clear()
    async with make_worker(client, queue):
        await asyncio.wait_for(started.wait(), 30)
        release.set()
        result = await asyncio.wait_for(handle.result(), 30)
    assert result.status == ExecutionStatus.succeeded
    assert CALLS[first] == 1 and CALLS[last] == 1
    assert CALLS[block] == 2  # the interrupted attempt, then the one that finished


async def test_reuse_outputs_marks_nodes_succeeded_without_running_them(client: Client) -> None:
    queue, a, b, c = new_queue(), new_queue(), new_queue(), new_queue()
    dag = spec(
        node("a", "echo", input={"key": a}),
        node("b", "echo", input={"key": b, "from": "{{nodes.a.output.key}}"}, depends_on=["a"]),
        node("c", "echo", input={"key": c, "prev": "{{nodes.b.output.from}}"}, depends_on=["b"]),
    )
    reuse = {"a": NodeOutput(value={"key": "A"}), "b": NodeOutput(value={"from": "A-from-before"})}
    async with make_worker(client, queue):
        result = await (await start(client, queue, dag, reuse_outputs=reuse)).result()
    assert CALLS[a] == 0 and CALLS[b] == 0 and CALLS[c] == 1
    assert result.outputs["c"] == {"key": c, "prev": "A-from-before"}
    assert [n.reused for n in result.nodes] == [True, True, False]
