"""DagWorkflow replays deterministically: fresh histories of several shapes, and recorded ones.

Record the kept history again (after a deliberate, patched change) with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_dag_replay.py`.
"""

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory

from contracts.dag import ApprovalDecision, RetrySpec
from tests.workflows.dag_fakes import make_worker, new_queue, node, spec, start
from tests.workflows.replay import HISTORIES, RECORD, record, replayer
from workflows.dag import DagWorkflow

RECORDED = HISTORIES / "dag_node_ids_and_compact_carry.json"
RECORDED_FIRST_RUN = HISTORIES / "dag_first_run_archives_events_before_continue_as_new.json"


def _dag_histories() -> list[Path]:
    """Recorded histories of DagWorkflow (other workflows keep theirs in the same folder)."""

    def workflow_type(path: Path) -> str:
        first = json.loads(path.read_text())["events"][0]
        return str(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])

    return [p for p in sorted(HISTORIES.glob("dag_*.json")) if workflow_type(p) == "DagWorkflow"]


async def test_fresh_histories_of_several_shapes_replay(client: Client) -> None:
    queue = new_queue()
    shapes = [
        spec(
            node("a", "echo", input={"v": 1}),
            node("b", "slow", input={"seconds": 0.1}),
            node("c", "echo", input={"x": "{{nodes.a.output.v}}"}, depends_on=["a", "b"]),
        ),
        spec(
            node(
                "bad", "flaky", input={"key": new_queue(), "fail_times": 9}, retry=RetrySpec(max_attempts=1)
            ),
            node("ok"),
            on_failure="continue",
        ),
        spec(node("gated", requires_approval=True), node("after", depends_on=["gated"])),
    ]
    histories: list[WorkflowHistory] = []
    async with make_worker(client, queue):
        for index, dag in enumerate(shapes):
            handle = await start(client, queue, dag, nodes_per_run=None)
            if index == 2:
                for _ in range(100):
                    status = await handle.query(DagWorkflow.status)
                    if status.nodes[0].status == "waiting_approval":
                        break
                    await asyncio.sleep(0.05)
                await handle.signal(DagWorkflow.approve_signal, ApprovalDecision(node_id="gated"))
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
            histories.append(await handle.fetch_history())
    replay = replayer(DagWorkflow)
    for history in histories:
        await replay.replay_workflow(history)


async def test_activities_are_named_after_nodes_and_a_compact_carry_replays(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("fetch", "echo", input={"v": 1}),
        node("local", depends_on=["fetch"]),
        node("big", "echo", input={"big": 20_000}, depends_on=["fetch"]),
        node("last", "echo", input={"x": "{{nodes.fetch.output.v}}"}, depends_on=["local", "big"]),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag, nodes_per_run=2)
        result = await handle.result()
        runs = [e async for e in client.list_workflows(f'WorkflowId="{handle.id}"')]
        histories = [
            await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history() for run in runs
        ]
    assert result.outputs == {"last": {"x": 1}}
    assert len(histories) == 2
    ids = sorted(
        e.activity_task_scheduled_event_attributes.activity_id
        for h in histories
        for e in h.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    # Tools, and the activity that stores a large output, are named after the node and attempt;
    # the closing run records the execution's usage.
    assert ids == ["big-1", "big-1-store", "fetch-1", "last-1", "record-usage"]
    big = next(n for n in result.nodes if n.id == "big")
    assert big.artifact == f"{handle.id}-big.json"
    replay = replayer(DagWorkflow)
    for history in histories:
        await replay.replay_workflow(history)
    if RECORD:
        attributes = [h.events[0].workflow_execution_started_event_attributes for h in histories]
        carried = next(h for h, a in zip(histories, attributes, strict=True) if a.continued_execution_run_id)
        first = next(h for h in histories if h is not carried)
        record(RECORDED, carried)
        record(RECORDED_FIRST_RUN, first)


@pytest.mark.parametrize("path", _dag_histories(), ids=lambda p: p.name)
async def test_recorded_history_replays(path: Path, client: Client) -> None:
    history = WorkflowHistory.from_json("dag-recorded", await asyncio.to_thread(path.read_text))
    replay = replayer(DagWorkflow)
    await replay.replay_workflow(history)
