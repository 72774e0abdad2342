"""Helpers the DAG API tests share: make a DAG, wait for an execution to reach a state."""

import asyncio
from typing import Any

import httpx

from tests.conftest import unique

CLOSED = {"succeeded", "failed", "cancelled"}
GATED: dict[str, Any] = {
    "nodes": [
        {"id": "a", "tool": "noop", "input": {"value": "first"}},
        {
            "id": "gate",
            "tool": "noop",
            "input": {"value": "{{nodes.a.output}}"},
            "depends_on": ["a"],
            "requires_approval": True,
        },
        {"id": "after", "tool": "noop", "input": {"value": "done"}, "depends_on": ["gate"]},
    ],
}
"""Three noop nodes, the middle one waiting for approval."""


async def make_dag(api: httpx.AsyncClient, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Store a DAG (a unique name unless given) and answer it."""
    body = {"spec": {"name": unique("dag"), **spec}, **extra}
    response = await api.post("/api/v1/dags", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def start(api: httpx.AsyncClient, dag_id: int, params: dict[str, Any] | None = None) -> str:
    """Start an execution; answer its id."""
    response = await api.post("/api/v1/execute-dag", json={"dag_id": dag_id, "params": params or {}})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def wait_for(
    api: httpx.AsyncClient, execution_id: str, statuses: set[str], *, within_s: float = 30
) -> dict[str, Any]:
    """Poll `GET /dag-executions/{id}` until its status is one of `statuses`."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        response = await api.get(f"/api/v1/dag-executions/{execution_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{execution_id} still {body['status']}: {body}")
        await asyncio.sleep(0.2)


async def wait_closed(api: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    return await wait_for(api, execution_id, CLOSED)


async def wait_node(
    api: httpx.AsyncClient, execution_id: str, node_id: str, status: str, *, within_s: float = 30
) -> dict[str, Any]:
    """Poll until one node reaches `status`."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        body = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
        node = next((n for n in body.get("nodes", []) if n["id"] == node_id), None)
        if node is not None and node["status"] == status:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{execution_id} node {node_id} not {status}: {body}")
        await asyncio.sleep(0.2)
