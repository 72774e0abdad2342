"""The patched continue-as-new path (archive the events a trim drops, upsert `DagStatus`)
replays deterministically, and archives exactly the truncated offsets, oldest first."""

from temporalio.client import Client

from contracts.dag import ExecutionStatus
from contracts.search import DAG_STATUS
from tests.workflows.dag_fakes import ARCHIVED, make_worker, new_queue, node, spec, start
from tests.workflows.replay import replay_all, replayer
from workflows.dag import DagWorkflow
from workflows.dag_events import KEEP_ON_CONTINUE


async def test_archiving_before_the_trim_keeps_every_dropped_offset_and_replays(client: Client) -> None:
    queue = new_queue()
    chain = [node("n0")] + [node(f"n{i}", depends_on=[f"n{i - 1}"]) for i in range(1, 400)]
    async with make_worker(client, queue):
        handle = await start(client, queue, spec(*chain), nodes_per_run=300)
        result = await handle.result()
        runs = [e async for e in client.list_workflows(f'WorkflowId="{handle.id}"')]
        histories = [
            await client.get_workflow_handle(handle.id, run_id=run.run_id).fetch_history() for run in runs
        ]
        description = await handle.describe()
    assert result.status == ExecutionStatus.succeeded
    assert len(histories) == 2
    archived = ARCHIVED[handle.id]
    # The one continue-as-new came after 1 + 2 * 300 + 1 events: all but the newest 500 went.
    cut = 1 + 2 * 300 + 1 - KEEP_ON_CONTINUE
    assert sorted(archived) == list(range(cut))
    assert [archived[offset].seq for offset in range(cut)] == [offset + 1 for offset in range(cut)]
    assert description.typed_search_attributes.get(DAG_STATUS) == "succeeded"
    await replay_all(replayer(DagWorkflow), histories)
