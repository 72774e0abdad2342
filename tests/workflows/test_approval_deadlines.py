"""Approval deadlines: a `requires_approval` node with `approval_timeout_s` waits on a durable
timer; when nobody decided by then, `on_timeout` decides (reject, approve or fail), the node says
the deadline decided, and the stream has `node_approval_timed_out`. Short real timers (1 s) on the
session's dev server; no assertion depends on how long anything took.

Record the kept history again with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_approval_deadlines.py`.
"""

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.exceptions import ApplicationError

from contracts.dag import ApprovalDecision, DagEvent, DagStatus, ExecutionStatus, NodeState, ResumeRequest
from tests.workflows.dag_fakes import CALLS, make_worker, new_queue, node, spec, start, until
from tests.workflows.replay import HISTORIES, record, replayer
from workflows.dag import DagWorkflow

RECORDED = HISTORIES / "dag_approval_deadline.json"


def nodes_of(status: DagStatus) -> dict[str, NodeState]:
    return {n.id: n for n in status.nodes}


async def events_of(client: Client, workflow_id: str) -> list[DagEvent]:
    """Every event of a closed execution's stream."""
    stream = WorkflowStreamClient.create(client, workflow_id)
    return [item.data async for item in stream.subscribe("events", result_type=DagEvent)]


def timer_events(history: WorkflowHistory) -> list[EventType.ValueType]:
    timers = (
        EventType.EVENT_TYPE_TIMER_STARTED,
        EventType.EVENT_TYPE_TIMER_FIRED,
        EventType.EVENT_TYPE_TIMER_CANCELED,
    )
    return [e.event_type for e in history.events if e.event_type in timers]


async def test_deadline_rejects_by_default_and_on_failure_applies(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("gated", requires_approval=True, approval_timeout_s=1),
        node("child", depends_on=["gated"]),
        node("free"),
        on_failure="continue",
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        waiting = await until(handle, lambda s: nodes_of(s)["gated"].status == "waiting_approval")
        assert nodes_of(waiting)["gated"].approval_deadline is not None
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        status = await handle.query(DagWorkflow.status)
        events = await events_of(client, handle.id)
        history = await handle.fetch_history()
    assert isinstance(failure.value.cause, ApplicationError) and failure.value.cause.type == "DagFailed"
    nodes = nodes_of(status)
    assert nodes["gated"].status == "failed"
    assert nodes["gated"].error == "rejected: approval timed out after 1 s"
    assert nodes["gated"].decided_by == "timeout" and nodes["gated"].approval_deadline is None
    assert nodes["child"].status == "skipped" and nodes["free"].status == "succeeded"
    gated = [(e.kind, e.message) for e in events if e.node_id == "gated"]
    assert gated[0][0] == "node_waiting_approval" and gated[0][1].endswith("then reject")
    assert gated[1:] == [
        ("node_approval_timed_out", "approval timed out after 1 s: reject"),
        ("node_rejected", "approval timed out after 1 s"),
        ("node_failed", "rejected: approval timed out after 1 s"),
    ]
    assert timer_events(history) == [EventType.EVENT_TYPE_TIMER_STARTED, EventType.EVENT_TYPE_TIMER_FIRED]
    await replayer(DagWorkflow).replay_workflow(history)
    record(RECORDED, history)


async def test_deadline_that_approves_runs_the_node(client: Client) -> None:
    queue, key = new_queue(), new_queue()
    dag = spec(
        node(
            "gated",
            "echo",
            input={"key": key},
            requires_approval=True,
            approval_timeout_s=1,
            on_timeout="approve",
        ),
        node("after", depends_on=["gated"]),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        result = await handle.result()
        events = await events_of(client, handle.id)
        history = await handle.fetch_history()
    assert result.status == ExecutionStatus.succeeded
    assert CALLS[key] == 1
    gated = next(n for n in result.nodes if n.id == "gated")
    assert gated.status == "succeeded" and gated.decided_by == "timeout"
    kinds = [e.kind for e in events if e.node_id == "gated"]
    assert kinds == [
        "node_waiting_approval",
        "node_approval_timed_out",
        "node_approved",
        "node_started",
        "node_succeeded",
    ]
    await replayer(DagWorkflow).replay_workflow(history)


async def test_deadline_that_fails_the_node_suspends_the_execution_by_on_failure(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("gated", requires_approval=True, approval_timeout_s=1, on_timeout="fail"),
        node("after", depends_on=["gated"]),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        status = await until(handle, lambda s: s.execution_status == ExecutionStatus.suspended)
        gated = nodes_of(status)["gated"]
        assert status.suspended_node == "gated"
        assert gated.status == "failed" and gated.error == "approval timed out after 1 s"
        assert gated.decided_by == "timeout"
        await handle.execute_update(DagWorkflow.resume, ResumeRequest(node_id="gated", action="skip"))
        result = await handle.result()
        events = await events_of(client, handle.id)
        history = await handle.fetch_history()
    assert result.status == ExecutionStatus.succeeded
    assert {n.id: n.status for n in result.nodes} == {"gated": "skipped", "after": "skipped"}
    kinds = [(e.kind, e.message) for e in events if e.node_id == "gated"]
    assert ("node_approval_timed_out", "approval timed out after 1 s: fail") in kinds
    assert ("node_failed", "approval timed out after 1 s") in kinds
    assert not any(kind == "node_rejected" for kind, _ in kinds)
    await replayer(DagWorkflow).replay_workflow(history)


async def test_a_person_deciding_first_cancels_the_deadline(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("gated", requires_approval=True, approval_timeout_s=3600), node("after", depends_on=["gated"])
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        await until(handle, lambda s: nodes_of(s)["gated"].status == "waiting_approval")
        await handle.execute_update(DagWorkflow.approve, ApprovalDecision(node_id="gated", comment="go"))
        result = await handle.result()
        events = await events_of(client, handle.id)
        history = await handle.fetch_history()
    assert result.status == ExecutionStatus.succeeded
    gated = next(n for n in result.nodes if n.id == "gated")
    assert gated.decided_by == "person" and gated.approval_deadline is None
    assert not any(e.kind == "node_approval_timed_out" for e in events)
    assert timer_events(history) == [EventType.EVENT_TYPE_TIMER_STARTED, EventType.EVENT_TYPE_TIMER_CANCELED]
    await replayer(DagWorkflow).replay_workflow(history)


async def test_without_a_timeout_a_node_waits_as_before(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("patient", requires_approval=True),
        node("quick", requires_approval=True, approval_timeout_s=1, on_timeout="approve"),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        # The deadline of `quick` fires; `patient`, which has none, still waits afterwards.
        status = await until(handle, lambda s: nodes_of(s)["quick"].status == "succeeded")
        patient = nodes_of(status)["patient"]
        assert patient.status == "waiting_approval" and patient.approval_deadline is None
        assert status.execution_status == ExecutionStatus.running
        await handle.signal(DagWorkflow.approve_signal, ApprovalDecision(node_id="patient"))
        result = await handle.result()
        history = await handle.fetch_history()
    assert result.status == ExecutionStatus.succeeded
    assert next(n for n in result.nodes if n.id == "patient").decided_by == "person"
    assert timer_events(history) == [EventType.EVENT_TYPE_TIMER_STARTED, EventType.EVENT_TYPE_TIMER_FIRED]
    await replayer(DagWorkflow).replay_workflow(history)


async def test_a_deadline_is_kept_across_continue_as_new(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("a"),
        node("b", depends_on=["a"]),
        node("gated", requires_approval=True, approval_timeout_s=3600),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag, nodes_per_run=1)
        await until(
            handle,
            lambda s: (
                nodes_of(s)["b"].status == "succeeded" and nodes_of(s)["gated"].status == "waiting_approval"
            ),
        )
        # The status can come from a run that continues-as-new right after answering; its next run
        # holds `gated` pending until its first activation, so an approval landing there is refused
        # as not waiting. Ask again until the run that waits takes it.
        for _ in range(100):
            try:
                await handle.execute_update(DagWorkflow.approve, ApprovalDecision(node_id="gated"))
                break
            except WorkflowUpdateFailedError as exc:
                if not (isinstance(exc.cause, ApplicationError) and "(it is pending)" in exc.cause.message):
                    raise
                await asyncio.sleep(0.1)
        result = await handle.result()
        events = await events_of(client, handle.id)
        runs = [e async for e in client.list_workflows(f'WorkflowId="{handle.id}"')]
    assert result.status == ExecutionStatus.succeeded
    assert len(runs) >= 2
    waits = [e.message for e in events if e.kind == "node_waiting_approval"]
    # Each run asks again, with the deadline the first wait set.
    assert len(waits) >= 2 and len(set(waits)) == 1 and waits[0].startswith("until ")
