"""Start a stored DAG's execution straight through Temporal, with knobs the REST API does not
offer (`nodes_per_run` / `events_per_run`, to make an execution continue-as-new after a few nodes
or history events)."""

import uuid
from typing import Any

from temporalio.client import Client

from contracts.dag import DagSpec, RunDagInput
from contracts.search import search_attributes
from core.settings import Settings
from workflows.dag import DagWorkflow


def chain(length: int) -> dict[str, Any]:
    """A spec body: `length` no-op nodes, each depending on the one before."""
    nodes: list[dict[str, Any]] = [{"id": "n0", "tool": "noop", "input": {"value": 0}}]
    nodes += [
        {"id": f"n{i}", "tool": "noop", "input": {"value": i}, "depends_on": [f"n{i - 1}"]}
        for i in range(1, length)
    ]
    return {"max_parallel": 4, "nodes": nodes}


async def start_direct(
    client: Client,
    settings: Settings,
    dag: dict[str, Any],
    *,
    nodes_per_run: int | None = None,
    events_per_run: int | None = None,
) -> str:
    """Start DagWorkflow for a stored DAG as the API would, plus `nodes_per_run` or
    `events_per_run`; its id."""
    workflow_id = f"dag-{dag['id']}-{uuid.uuid4().hex[:8]}"
    spec = DagSpec.model_validate(dag["spec"])
    await client.start_workflow(
        DagWorkflow.run,
        RunDagInput(dag_id=dag["id"], spec=spec, nodes_per_run=nodes_per_run, events_per_run=events_per_run),
        id=workflow_id,
        task_queue=settings.task_queue,
        search_attributes=search_attributes(dag_id=str(dag["id"]), run_kind="dag"),
    )
    return workflow_id
