"""A DAG execution run saves the state it closes with (succeeded, failed or cancelled), equal to
what the `status` query answers from the closed run, and the histories with the save replay.

Record the kept history again with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_dag_final_state.py`.
"""

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from contracts.dag import DagStatus, ExecutionStatus, NodeStatus, RetrySpec
from core.db import session_scope
from core.settings import get_settings
from storage import final_states
from tests.workflows.dag_fakes import gate, make_worker, new_queue, node, spec, start, until
from tests.workflows.replay import HISTORIES, record, replay_all, replayer
from workflows.dag import DagWorkflow

RECORDED = HISTORIES / "dag_final_state_saved.json"


async def _saved(handle: WorkflowHandle[DagWorkflow, object]) -> DagStatus | None:
    description = await handle.describe()
    async with session_scope(get_settings()) as session:
        return await final_states.load(session, handle.id, description.run_id)


async def test_each_way_of_closing_saves_the_state_the_query_answers_and_replays(client: Client) -> None:
    queue = new_queue()
    started, release = gate(f"final-{queue}")
    async with make_worker(client, queue):
        succeeded = await start(
            client, queue, spec(node("a", "echo", input={"v": 7}), node("b", depends_on=["a"]))
        )
        failed = await start(
            client,
            queue,
            spec(
                node("bad", "flaky", input={"key": queue, "fail_times": 9}, retry=RetrySpec(max_attempts=1)),
                node("after", depends_on=["bad"]),
                on_failure="fail",
            ),
        )
        cancelled = await start(client, queue, spec(node("held", "blocker", input={"key": f"final-{queue}"})))
        await succeeded.result()
        with pytest.raises(WorkflowFailureError):
            await failed.result()
        await until(cancelled, lambda s: s.nodes[0].status == NodeStatus.running)
        await started.wait()
        await cancelled.cancel()
        with pytest.raises(WorkflowFailureError):
            await cancelled.result()
        release.set()
        answers = {h.id: await h.query(DagWorkflow.status) for h in (succeeded, failed, cancelled)}
        histories = [await h.fetch_history() for h in (succeeded, failed, cancelled)]

    expected = {
        succeeded.id: ExecutionStatus.succeeded,
        failed.id: ExecutionStatus.failed,
        cancelled.id: ExecutionStatus.cancelled,
    }
    for handle in (succeeded, failed, cancelled):
        saved = await _saved(handle)
        assert saved is not None, f"{expected[handle.id]} run saved nothing"
        assert saved == answers[handle.id]
        assert saved.execution_status == expected[handle.id]
    saved_success = await _saved(succeeded)
    assert saved_success is not None
    assert [(n.id, n.status, n.output) for n in saved_success.nodes] == [
        ("a", NodeStatus.succeeded, {"v": 7}),
        ("b", NodeStatus.succeeded, None),
    ]
    record(RECORDED, histories[0])
    await replay_all(replayer(DagWorkflow), histories)


async def test_a_run_that_continues_as_new_saves_nothing_until_its_last_run_closes(client: Client) -> None:
    queue = new_queue()
    chain = [node("n0")] + [node(f"n{i}", depends_on=[f"n{i - 1}"]) for i in range(1, 5)]
    async with make_worker(client, queue):
        handle = await start(client, queue, spec(*chain), nodes_per_run=2)
        await handle.result()
        runs = [e async for e in client.list_workflows(f'WorkflowId="{handle.id}"')]
        answer = await handle.query(DagWorkflow.status)
    assert len(runs) == 3
    async with session_scope(get_settings()) as session:
        rows = {run.run_id: await final_states.load(session, handle.id, run.run_id) for run in runs}
    latest = (await handle.describe()).run_id
    assert rows.pop(latest) == answer
    assert answer.done == 5
    assert set(rows.values()) == {None}
