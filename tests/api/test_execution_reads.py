"""Where `GET /dag-executions/{id}` gets a run's state: a closed run from the final state it saved
(no worker needed, no replay), a running one from the `status` query, asked again only when the
run's history grew."""

import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle

from contracts.dag import DagStatus
from contracts.workflow_names import DAG_STATUS_QUERY
from core.settings import Settings
from services import dag_executions
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_node
from tests.conftest import api_client
from worker import build_worker

FAILS = {
    "nodes": [
        {"id": "sum", "tool": "calculator", "input": {"expression": "6*7"}},
        {"id": "bad", "tool": "calculator", "input": {"expression": "1/0"}, "depends_on": ["sum"]},
    ],
    "on_failure": "fail",
}
GATED = {
    "nodes": [
        {"id": "a", "tool": "noop", "input": {"value": 1}},
        {"id": "gate", "tool": "noop", "depends_on": ["a"], "requires_approval": True},
    ]
}


async def test_a_closed_execution_is_read_with_no_worker_running(client: Client, settings: Settings) -> None:
    own = settings.model_copy(update={"task_queue": f"reads-{uuid.uuid4().hex[:8]}"})
    async with api_client(own) as api:
        dag = await make_dag(api, FAILS)
        async with build_worker(client, own):
            execution_id = await start(api, dag["id"])
            body = await wait_closed(api, execution_id)
            queried = await client.get_workflow_handle(execution_id).query(
                DAG_STATUS_QUERY, result_type=DagStatus
            )
        dag_executions.CLOSED_DETAILS.clear()  # nothing this process kept: the read starts afresh
        again = await api.get(f"/api/v1/dag-executions/{execution_id}")
    assert body["status"] == "failed"
    assert again.status_code == 200, again.text
    assert again.json() == body
    assert [(n["id"], n["status"], n.get("output")) for n in again.json()["nodes"]] == [
        ("sum", "succeeded", 42),
        ("bad", "failed", None),
    ]
    assert [n.model_dump(mode="json") for n in queried.nodes] == body["nodes"]


async def test_a_running_execution_is_queried_again_only_when_its_history_grew(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    query = dag_executions.query_status

    async def counted(handle: WorkflowHandle[Any, Any]) -> DagStatus | None:
        asked.append(handle.id)
        return await query(handle)

    monkeypatch.setattr(dag_executions, "query_status", counted)
    dag = await make_dag(api, GATED)
    execution_id = await start(api, dag["id"])
    await wait_node(api, execution_id, "gate", "waiting_approval")
    settled = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
    asked.clear()
    reads = [(await api.get(f"/api/v1/dag-executions/{execution_id}")).json() for _ in range(5)]
    assert reads == [settled] * 5
    assert asked == [], "a run whose history did not grow was queried again"

    approved = await api.post(f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"})
    assert approved.status_code == 200, approved.text
    asked.clear()
    after = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
    assert {n["id"]: n["status"] for n in after["nodes"]}["gate"] != "waiting_approval"
    assert asked == [execution_id] or after["status"] == "succeeded", "the approval grew the history"
    closed = await wait_closed(api, execution_id)
    assert closed["status"] == "succeeded"
