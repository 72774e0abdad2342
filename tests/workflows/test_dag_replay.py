"""DagWorkflow replays deterministically: fresh histories of several shapes, and recorded ones."""

import asyncio
import contextlib
from pathlib import Path

import pytest
from pydantic_ai.durable_exec.temporal import PydanticAIPlugin
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.worker import Replayer

from contracts.dag import ApprovalDecision, RetrySpec
from tests.workflows.dag_fakes import make_worker, new_queue, node, spec, start
from workflows.dag import DagWorkflow

HISTORIES = Path(__file__).parent / "histories"


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
    replayer = Replayer(workflows=[DagWorkflow], plugins=[PydanticAIPlugin()])
    for history in histories:
        await replayer.replay_workflow(history)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("dag_*.json")), ids=lambda p: p.name)
async def test_recorded_history_replays(path: Path, client: Client) -> None:
    history = WorkflowHistory.from_json("dag-recorded", await asyncio.to_thread(path.read_text))
    replayer = Replayer(workflows=[DagWorkflow], plugins=[PydanticAIPlugin()])
    await replayer.replay_workflow(history)
