"""History that cannot blow up: continue-as-new carries state, the stream survives it, and a
10,000-node DAG completes inside Temporal's history limits."""

import time

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from contracts.dag import DagEvent, ExecutionStatus
from tests.workflows.dag_fakes import make_worker, new_queue, node, spec, start
from workflows.dag import DagWorkflow

HISTORY_EVENT_LIMIT = 51_200
HISTORY_BYTES_LIMIT = 50 * 1024 * 1024


async def run_count(client: Client, workflow_id: str) -> int:
    runs = 0
    async for _ in client.list_workflows(f'WorkflowId="{workflow_id}"'):
        runs += 1
    return runs


async def test_continue_as_new_carries_nodes_outputs_and_the_event_stream(client: Client) -> None:
    queue = new_queue()
    chain = [node("n0", "echo", input={"i": 0})]
    chain += [
        node(f"n{i}", "echo", input={"i": f"{{{{nodes.n{i - 1}.output.i}}}}"}, depends_on=[f"n{i - 1}"])
        for i in range(1, 7)
    ]
    async with make_worker(client, queue):
        handle = await start(client, queue, spec(*chain), nodes_per_run=2)
        result = await handle.result()
        status = await handle.query(DagWorkflow.status)
        events = [
            e
            async for e in WorkflowStreamClient.create(client, handle.id).subscribe(
                "events", result_type=DagEvent
            )
        ]
    assert result.status == ExecutionStatus.succeeded
    assert result.outputs == {"n6": {"i": 0}}
    assert status.done == 7 and all(n.started_at and n.finished_at for n in status.nodes)
    # One offset-addressed stream across runs: started, 7 x (started, succeeded), 3 continues, done.
    kinds = [e.data.kind for e in events]
    assert kinds[0] == "execution_started" and kinds[-1] == "execution_succeeded"
    assert kinds.count("continued_as_new") == 3 and kinds.count("node_succeeded") == 7
    assert [e.offset for e in events] == list(range(len(events)))
    assert await run_count(client, handle.id) == 4


async def test_ten_thousand_node_dag_completes_within_history_limits(client: Client) -> None:
    queue = new_queue()
    dag = spec(*(node(f"n{i}") for i in range(10_000)), max_parallel=256)
    began = time.monotonic()
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        result = await handle.result()
        elapsed = time.monotonic() - began
        runs, events = 0, []
        async for execution in client.list_workflows(f'WorkflowId="{handle.id}"'):
            runs += 1
            history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
            events.append(len(history.events))
            assert len(history.events) < HISTORY_EVENT_LIMIT
            assert history.to_json().__len__() < HISTORY_BYTES_LIMIT
            started = history.events[0].workflow_execution_started_event_attributes
            # Only unfinished nodes' specs and compact finished nodes travel: far below 2 MB.
            assert started.input.payloads[0].ByteSize() < 1024 * 1024
            assert history.events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    assert result.status == ExecutionStatus.succeeded
    assert len(result.nodes) == 10_000 and all(n.status == "succeeded" for n in result.nodes)
    assert runs >= 2, "a history this long must have continued-as-new"
    print(f"10,000 nodes: {elapsed:.1f}s over {runs} runs, history events per run {events}")
