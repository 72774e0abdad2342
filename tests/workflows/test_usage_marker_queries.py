"""A DAG execution polled while its local-activity nodes run still replays, so once closed it still
answers its status query (GET /dag-executions/{id} shows its nodes; fork works).

The defect this guards against: a status query answered while a local node runs makes Core report
that node's marker in the query's task completion and force a new workflow task in which the
workflow sees the result. Replay resolves the node one task earlier, so a `workflow.patched` call
made in reaction to it (`record-usage` when the run closes, `dag-archive-events-before-trim` when it
continues as new) came before its marker on replay and failed with a nondeterminism error. Each run
of a continued-as-new execution starts with the queries buffered during its first task's delay, so
with one node per run every run is a chance. `workflows/dag_patches.py` decides every patch in a
run's first activation instead.
"""

import asyncio
import contextlib
import itertools
import json
import uuid
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

from contracts.dag import DagSpec, RunDagInput
from contracts.search import search_attributes
from contracts.workflow_names import DAG_WORKFLOW
from core.settings import Settings
from tests.api.dag_helpers import CLOSED, make_dag
from tests.workflows.replay import HISTORIES, RECORD, record, replay_all, replayer
from tests.workflows.test_recorded_histories import PATCH_TYPES
from workflows.dag import DagWorkflow

RECORDED = HISTORIES / "dag_patches_up_front_after_query_split.json"
NODES = 5
ATTEMPTS = 3
"""Executions to try until one shows a query-split task (each has NODES runs that can show it)."""


def _chain(length: int) -> dict[str, Any]:
    """Cheap local-activity tool nodes, each depending on the one before."""
    nodes: list[dict[str, Any]] = []
    for i in range(length):
        node: dict[str, Any] = (
            {"id": f"n{i}", "tool": "calculator", "input": {"expression": f"{i}*2"}}
            if i % 2 == 0
            else {"id": f"n{i}", "tool": "noop", "input": {"value": i}}
        )
        if i:
            node["depends_on"] = [f"n{i - 1}"]
        nodes.append(node)
    return {"max_parallel": 4, "nodes": nodes}


async def _start(
    client: Client, settings: Settings, dag: dict[str, Any], *, nodes_per_run: int | None
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        DagWorkflow.run,
        RunDagInput(dag_id=dag["id"], spec=DagSpec.model_validate(dag["spec"]), nodes_per_run=nodes_per_run),
        id=f"dag-{dag['id']}-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        search_attributes=search_attributes(dag_id=str(dag["id"]), run_kind="dag"),
    )


async def _poll(api: httpx.AsyncClient, execution_id: str, closed: asyncio.Event) -> None:
    """What a UI does: GET the execution every ~50 ms until it is closed."""
    while not closed.is_set():
        response = await api.get(f"/api/v1/dag-executions/{execution_id}")
        assert response.status_code == 200, response.text
        if response.json()["status"] in CLOSED:
            closed.set()
        await asyncio.sleep(0.05)


async def _run_polled(api: httpx.AsyncClient, handle: WorkflowHandle[Any, Any]) -> None:
    closed = asyncio.Event()
    pollers = [asyncio.create_task(_poll(api, handle.id, closed)) for _ in range(3)]
    try:
        await asyncio.wait_for(handle.result(), timeout=120)
        closed.set()
        await asyncio.gather(*pollers)
    finally:
        for task in pollers:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*pollers)


async def _runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run's history, first run first, following continue-as-new back from the latest."""
    histories = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return histories[::-1]


def _query_split(events: list[HistoryEvent]) -> bool:
    """Whether a task completion carried a local activity's marker and forced a new task (what
    answering a query while a local activity runs does), so the workflow saw it one task later."""
    return any(
        event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        and following.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
        for event, following in itertools.pairwise(events)
    )


def _first_task_patches(events: list[HistoryEvent]) -> set[str]:
    """The patch ids whose markers the run's first workflow task completion recorded."""
    completed = next(
        i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    found = set()
    for event in events[completed + 1 :]:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                break
            continue
        attributes = event.marker_recorded_event_attributes
        if attributes.marker_name == "core_patch":
            found.add(str(json.loads(attributes.details["patch-data"].payloads[0].data)["id"]))
    return found


async def test_a_dag_polled_while_its_local_nodes_run_replays_and_answers_its_status_once_closed(
    api: httpx.AsyncClient, client: Client, settings: Settings
) -> None:
    dag = await make_dag(api, _chain(NODES))
    for _ in range(ATTEMPTS):
        handle = await _start(client, settings, dag, nodes_per_run=1)
        await _run_polled(api, handle)
        histories = await _runs(client, handle.id)
        assert len(histories) == NODES
        # Replay is what a worker does to answer a query of the closed execution.
        await replay_all(replayer(DagWorkflow), histories)
        if any(_query_split(list(h.events)) for h in histories):
            break
    else:
        raise AssertionError(f"no query split a task in {ATTEMPTS} executions: nothing was tested")

    status = await client.get_workflow_handle(handle.id).query(DagWorkflow.status)
    assert (status.execution_status, status.done) == ("succeeded", NODES)
    body = (await api.get(f"/api/v1/dag-executions/{handle.id}")).json()
    assert body["status"] == "succeeded", body
    assert [(n["id"], n["status"]) for n in body["nodes"]] == [(f"n{i}", "succeeded") for i in range(NODES)]
    last = f"n{NODES - 1}"
    fork = await api.post(
        f"/api/v1/dag-executions/{handle.id}/fork",
        json={"from_node": last, "patch": {last: {"input": {"expression": "40+2"}}}},
    )
    assert fork.status_code == 201, fork.text
    assert fork.json()["reused_nodes"] == [f"n{i}" for i in range(NODES - 1)]
    forked = client.get_workflow_handle_for(DagWorkflow.run, fork.json()["id"])
    assert (await forked.result()).outputs == {last: 42}

    if RECORD:
        final = histories[-1]
        assert _query_split(list(final.events)), "record again: the closing run was not split"
        record(RECORDED, final)


async def test_a_new_dag_run_decides_every_patch_it_consults_in_its_first_workflow_task(
    api: httpx.AsyncClient, client: Client, settings: Settings
) -> None:
    dag = await make_dag(api, _chain(2))
    handle = await _start(client, settings, dag, nodes_per_run=1)
    await handle.result()
    dag_patches = {patch for patch, types in PATCH_TYPES.items() if DAG_WORKFLOW in types}
    for history in await _runs(client, handle.id):
        assert _first_task_patches(list(history.events)) >= dag_patches
