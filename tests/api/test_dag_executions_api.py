"""`/dag-executions`: status from the query, approvals, cancel, delete, and both kinds of resume."""

import asyncio
from typing import Any

import httpx
from temporalio.client import Client

from tests.api.dag_helpers import GATED, make_dag, start, wait_closed, wait_for, wait_node
from tests.fakes.openai_server import Fail, FakeOpenAI
from tests.helpers import decoded_history, make_agent, make_provider


async def test_get_execution_answers_status_nodes_usage_and_times(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, {"nodes": [{"id": "x", "tool": "calculator", "input": {"expression": "3*3"}}]})
    execution_id = await start(api, dag["id"])
    body = await wait_closed(api, execution_id)
    assert body["id"] == execution_id
    assert body["dag_id"] == dag["id"]
    assert body["status"] == "succeeded"
    assert [(n["id"], n["status"], n["output"]) for n in body["nodes"]] == [("x", "succeeded", 9)]
    assert body["usage"] == {"requests": 0, "input_tokens": 0, "output_tokens": 0}
    assert (body["done"], body["total"]) == (1, 1)
    assert body["started_at"] is not None and body["closed_at"] is not None
    assert body["web_ui_url"].endswith(f"/namespaces/default/workflows/{execution_id}")

    steps = await api.get(f"/api/v1/dag-executions/{execution_id}/sub-steps")
    assert steps.status_code == 200
    assert steps.json() == body["nodes"]


async def test_unknown_execution_ids_are_404(api: httpx.AsyncClient) -> None:
    for path in ("", "/sub-steps", "/events"):
        assert (await api.get(f"/api/v1/dag-executions/dag-0-nothere{path}")).status_code == 404, path
    assert (await api.post("/api/v1/dag-executions/dag-0-nothere/cancel")).status_code == 404
    approve = await api.post("/api/v1/dag-executions/dag-0-nothere/approve", json={"node_id": "a"})
    assert approve.status_code == 404
    assert (await api.post("/api/v1/resume-dag/dag-0-nothere")).status_code == 404
    assert (await api.delete("/api/v1/dag-executions/dag-0-nothere")).status_code == 404
    # Not a DAG execution id at all.
    assert (await api.get("/api/v1/dag-executions/goal-1-abc")).status_code == 422


async def test_approval_flow_with_precise_errors(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, GATED)
    execution_id = await start(api, dag["id"])
    await wait_node(api, execution_id, "gate", "waiting_approval")

    unknown = await api.post(f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "nope"})
    assert unknown.status_code == 422
    assert "unknown node 'nope'" in unknown.json()["detail"]
    not_waiting = await api.post(f"/api/v1/dag-executions/{execution_id}/reject", json={"node_id": "a"})
    assert not_waiting.status_code == 409
    assert "not waiting for approval" in not_waiting.json()["detail"]

    approved = await api.post(
        f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate", "comment": "ok"}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["execution_status"] in ("running", "succeeded")
    assert {n["id"]: n["status"] for n in approved.json()["nodes"]}["gate"] != "waiting_approval"
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded"
    assert [n["status"] for n in body["nodes"]] == ["succeeded"] * 3

    closed = await api.post(f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"})
    assert closed.status_code == 409


async def test_reject_with_on_failure_fail_fails_the_execution(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, {**GATED, "on_failure": "fail"})
    execution_id = await start(api, dag["id"])
    await wait_node(api, execution_id, "gate", "waiting_approval")
    rejected = await api.post(
        f"/api/v1/dag-executions/{execution_id}/reject", json={"node_id": "gate", "comment": "no way"}
    )
    assert rejected.status_code == 200, rejected.text
    body = await wait_closed(api, execution_id)
    assert body["status"] == "failed"
    states = {n["id"]: n for n in body["nodes"]}
    assert states["gate"]["status"] == "failed"
    assert states["gate"]["error"] == "rejected: no way"
    assert states["after"]["status"] == "skipped"


async def test_cancel_then_delete_and_409s(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, GATED)
    execution_id = await start(api, dag["id"])
    await wait_node(api, execution_id, "gate", "waiting_approval")

    running_delete = await api.delete(f"/api/v1/dag-executions/{execution_id}")
    assert running_delete.status_code == 409
    assert "cancel it first" in running_delete.json()["detail"]

    cancelled = await api.post(f"/api/v1/dag-executions/{execution_id}/cancel")
    assert cancelled.status_code == 202
    body = await wait_closed(api, execution_id)
    assert body["status"] == "cancelled"
    assert {n["id"]: n["status"] for n in body["nodes"]}["after"] == "cancelled"
    assert (await api.post(f"/api/v1/dag-executions/{execution_id}/cancel")).status_code == 409

    assert (await api.delete(f"/api/v1/dag-executions/{execution_id}")).status_code == 204
    # Temporal deletes asynchronously; the execution is gone soon after, for reads and a second delete.
    for _ in range(180):
        if (await api.get(f"/api/v1/dag-executions/{execution_id}")).status_code == 404:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"{execution_id} still readable 90 s after its delete")
    assert (await api.delete(f"/api/v1/dag-executions/{execution_id}")).status_code == 404


async def test_list_executions_filters_by_status(api: httpx.AsyncClient) -> None:
    ok = await make_dag(api, {"nodes": [{"id": "x", "tool": "noop"}]})
    bad = await make_dag(
        api,
        {"on_failure": "fail", "nodes": [{"id": "x", "tool": "calculator", "input": {"expression": "1/0"}}]},
    )
    ok_id, bad_id = await start(api, ok["id"]), await start(api, bad["id"])
    assert (await wait_closed(api, ok_id))["status"] == "succeeded"
    assert (await wait_closed(api, bad_id))["status"] == "failed"

    async def listed(status: str) -> set[str]:
        response = await api.get("/api/v1/dag-executions", params={"status": status, "limit": 500})
        assert response.status_code == 200, response.text
        return {e["id"] for e in response.json()}

    for _ in range(50):
        succeeded, failed = await listed("succeeded"), await listed("failed")
        if ok_id in succeeded and bad_id in failed:
            break
        await asyncio.sleep(0.2)
    assert ok_id in succeeded and bad_id not in succeeded
    assert bad_id in failed and ok_id not in failed
    assert (await api.get("/api/v1/dag-executions", params={"status": "weird"})).status_code == 422


async def test_resume_suspended_execution_patches_the_failed_node(api: httpx.AsyncClient) -> None:
    spec = {
        "nodes": [
            {"id": "calc", "tool": "calculator", "input": {"expression": "1/0"}},
            {
                "id": "echo",
                "tool": "noop",
                "input": {"value": "{{nodes.calc.output}}"},
                "depends_on": ["calc"],
            },
        ]
    }
    dag = await make_dag(api, spec)
    execution_id = await start(api, dag["id"])
    suspended = await wait_for(api, execution_id, {"suspended"})
    assert suspended["suspended_node"] == "calc"

    wrong = await api.post(f"/api/v1/resume-dag/{execution_id}", json={"node_id": "echo", "action": "retry"})
    assert wrong.status_code == 409
    no_input = await api.post(
        f"/api/v1/resume-dag/{execution_id}", json={"node_id": "calc", "action": "patch"}
    )
    assert no_input.status_code == 422
    # A patch is checked like a fork's and POST /dags's, before the workflow is asked anything.
    for bad, says in (
        ({"expression": 5}, "input['expression']"),
        ({"expression": "1", "nope": 1}, "nope"),
    ):
        refused = await api.post(
            f"/api/v1/resume-dag/{execution_id}", json={"node_id": "calc", "action": "patch", "input": bad}
        )
        assert refused.status_code == 422, refused.text
        assert says in refused.text
    assert (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()["status"] == "suspended"

    resumed = await api.post(
        f"/api/v1/resume-dag/{execution_id}",
        json={"node_id": "calc", "action": "patch", "input": {"expression": "6*7"}},
    )
    assert resumed.status_code == 200, resumed.text
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded"
    assert {n["id"]: n["output"] for n in body["nodes"]} == {"calc": 42, "echo": 42}


async def test_resume_failed_execution_reruns_only_unfinished_nodes(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    provider = await make_provider(api, fake_llm)
    first = await make_agent(api, provider["id"])
    second = await make_agent(api, provider["id"])
    spec = {
        "on_failure": "fail",
        "params": {"topic": "dogs"},
        "nodes": [
            {"id": "draft", "agent": first["name"], "prompt": "draft {{params.topic}}"},
            {"id": "count", "tool": "calculator", "input": {"expression": "2+2"}},
            {
                "id": "review",
                "agent": second["name"],
                "prompt": "review {{nodes.draft.output}}",
                "depends_on": ["draft", "count"],
            },
        ],
    }
    dag = await make_dag(api, spec)
    fake_llm.script(second["model"], Fail(400, "bad request once"))
    old_id = await start(api, dag["id"], {"topic": "cats"})
    old = await wait_closed(api, old_id)
    assert old["status"] == "failed"
    assert len(fake_llm.calls(first["model"])) == 1
    assert len(fake_llm.calls(second["model"])) == 1

    response = await api.post(f"/api/v1/resume-dag/{old_id}")
    assert response.status_code == 201, response.text
    new_id = response.json()["id"]
    assert new_id != old_id and new_id.startswith(f"dag-{dag['id']}-")
    assert response.json()["reused_nodes"] == ["count", "draft"]
    new = await wait_closed(api, new_id)

    assert new["status"] == "succeeded", new
    states = {n["id"]: n for n in new["nodes"]}
    assert states["draft"]["reused"] is True and states["count"]["reused"] is True
    assert states["draft"]["output"] == "echo: draft cats"
    assert states["review"]["output"] == "echo: review echo: draft cats"
    # Only the failed node ran again: the first agent's model was not called a second time, and
    # the new execution scheduled no calculator activity.
    assert len(fake_llm.calls(first["model"])) == 1
    assert len(fake_llm.calls(second["model"])) == 2
    assert await _tool_runs(client, new_id, "calculator") == 0
    assert await _tool_runs(client, old_id, "calculator") == 1

    again = await api.post(f"/api/v1/resume-dag/{new_id}")
    assert again.status_code == 409


async def _tool_runs(client: Client, workflow_id: str, tool: str) -> int:
    """Activities (local ones are markers) for a tool in an execution's history."""
    count = 0
    for event in await decoded_history(client, workflow_id):  # marker details are encrypted
        if event.HasField("activity_task_scheduled_event_attributes"):
            count += event.activity_task_scheduled_event_attributes.activity_type.name == tool
        if event.HasField("marker_recorded_event_attributes"):
            details: Any = event.marker_recorded_event_attributes.details
            data = details.get("data") if "data" in details else None
            if data is not None and tool.encode() in b"".join(p.data for p in data.payloads):
                count += 1
    return count
