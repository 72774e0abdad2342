"""`/runs`: goal runs as Temporal knows them — filters, details, live and final steps, delete."""

import asyncio
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.main import create_app
from contracts.dag import ApprovalDecision
from contracts.goals import GoalRunResult
from core.errors import NotFound
from core.settings import Settings
from services import runs as runs_service
from tests.api.goal_helpers import make_goal, make_goal_agent, wait_closed
from tests.fakes.openai_server import FakeOpenAI
from workflows.dag import DagWorkflow

APPROVAL_PLAN: dict[str, Any] = {
    "name": "needs-approval",
    "nodes": [
        {"id": "calc", "tool": "calculator", "input": {"expression": "1 + 1"}},
        {
            "id": "gate",
            "tool": "noop",
            "input": {"value": "{{nodes.calc.output}}"},
            "depends_on": ["calc"],
            "requires_approval": True,
        },
    ],
}


async def _listed(api: httpx.AsyncClient, want: int, **params: Any) -> list[dict[str, Any]]:
    """Visibility is eventually consistent: poll until the list has `want` entries."""
    async with asyncio.timeout(30):
        while True:
            response = await api.get("/api/v1/runs", params=params)
            assert response.status_code == 200, response.text
            if len(response.json()) >= want:
                return list(response.json())
            await asyncio.sleep(0.3)


async def test_runs_filter_by_goal_and_status_and_paginate(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    # A 1-token budget makes each run fail right after planning: quick, closed runs.
    goal = await make_goal(api, agent["name"], max_tokens_per_run=1)
    other = await make_goal(api, agent["name"], max_tokens_per_run=1)
    ids = [(await api.post(f"/api/v1/goals/{g['id']}/run")).json()["id"] for g in (goal, goal, other)]
    for run_id in ids:
        await wait_closed(client, run_id)

    mine = await _listed(api, 2, goalId=goal["id"])
    assert sorted(r["id"] for r in mine) == sorted(ids[:2])
    assert all(r["goal_id"] == goal["id"] for r in mine)
    failed = await _listed(api, 2, goalId=goal["id"], status="failed")
    assert {r["status"] for r in failed} == {"failed"}
    assert (await api.get("/api/v1/runs", params={"goalId": goal["id"], "status": "succeeded"})).json() == []
    page = (await api.get("/api/v1/runs", params={"goalId": goal["id"], "limit": 1, "offset": 1})).json()
    assert [r["id"] for r in page] == [mine[1]["id"]]
    assert mine[0]["web_ui_url"].endswith(f"/namespaces/default/workflows/{mine[0]['id']}")

    assert (await api.get("/api/v1/runs", params={"status": "bogus"})).status_code == 422
    assert (await api.get("/api/v1/runs/goal-999999-nope")).status_code == 404
    assert (await api.get("/api/v1/runs/dag-1-abc")).status_code == 422


async def test_steps_are_live_while_running_and_final_after_and_delete(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm, plan=APPROVAL_PLAN)
    goal = await make_goal(api, agent["name"])
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]

    async with asyncio.timeout(60):
        while True:
            live = (await api.get(f"/api/v1/runs/{run_id}/steps")).json()
            gate = next((s for s in live["steps"] if s["id"] == "gate"), None)
            if gate is not None and gate["status"] == "waiting_approval":
                break
            await asyncio.sleep(0.3)
    assert live["phase"] == "running"
    assert [s["status"] for s in live["steps"]] == ["succeeded", "succeeded", "waiting_approval", "pending"]
    running = (await api.get(f"/api/v1/runs/{run_id}")).json()
    assert running["status"] == "running" and running["phase"] == "running"
    assert running["usage"]["requests"] == 1

    dag = client.get_workflow_handle(live["dag_workflow_id"])
    await dag.execute_update(DagWorkflow.approve, ApprovalDecision(node_id="gate"))
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.COMPLETED
    final = (await api.get(f"/api/v1/runs/{run_id}/steps")).json()
    assert final["phase"] == "finished"
    assert [s["status"] for s in final["steps"]] == ["succeeded"] * 4
    assert final["steps"][-1]["artifact"].endswith("-report.md")

    assert (await api.delete(f"/api/v1/runs/{run_id}")).status_code == 204
    # The dev server deletes closed executions asynchronously (~30 s here): wait it out.
    async with asyncio.timeout(120):
        while True:
            if (await api.get(f"/api/v1/runs/{run_id}")).status_code == 404:
                break
            await asyncio.sleep(0.3)


async def test_deleting_a_running_run_or_its_goal_is_refused_and_cancel_stops_it(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm, plan=APPROVAL_PLAN)
    goal = await make_goal(api, agent["name"])
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    refused = await api.delete(f"/api/v1/runs/{run_id}")
    assert refused.status_code == 409 and "cancel it first" in refused.text
    for _ in range(50):  # the goal's runs are found through visibility, which lists a new run soon
        if (await api.get(f"/api/v1/runs?goalId={goal['id']}&status=running")).json():
            break
        await asyncio.sleep(0.2)
    goal_refused = await api.delete(f"/api/v1/goals/{goal['id']}")
    assert goal_refused.status_code == 409 and run_id in goal_refused.text
    response = await api.post(f"/api/v1/runs/{run_id}/cancel")
    assert response.status_code == 202
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.CANCELED
    again = await api.post(f"/api/v1/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert (await api.delete(f"/api/v1/goals/{goal['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/runs/{run_id}")).json()["status"] == "cancelled"


async def test_a_run_gone_between_two_temporal_reads_is_a_404_not_a_500(client: Client) -> None:
    # GET /runs/{id} describes, then reads the result; a deletion landing in between must answer
    # 404. Reading the result of a run that does not exist is that second read.
    handle = client.get_workflow_handle("goal-999999-gone", result_type=GoalRunResult)
    with pytest.raises(NotFound):
        await runs_service._result(handle)


async def test_unmapped_temporal_rpc_errors_answer_by_status_not_500(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RPCError("workflow execution not found", RPCStatusCode.NOT_FOUND, b"")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        response = await http.get("/boom")
    assert response.status_code == 404
    assert response.json() == {"detail": "the Temporal call not found"}


async def test_a_failed_runs_steps_are_asked_once_then_kept(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], max_tokens_per_run=1)  # fails right after planning
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.FAILED
    asked: list[str] = []
    query = runs_service._progress

    async def counted(handle: Any) -> Any:
        asked.append(handle.id)
        return await query(handle)

    monkeypatch.setattr(runs_service, "_progress", counted)
    first = await api.get(f"/api/v1/runs/{run_id}")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "failed" and first.json()["phase"] != "finished"
    assert asked == [run_id]
    # Each later read answers the same without a query, which would make a worker replay the run.
    again = await api.get(f"/api/v1/runs/{run_id}")
    steps = await api.get(f"/api/v1/runs/{run_id}/steps")
    assert again.json() == first.json()
    assert steps.status_code == 200 and steps.json()["steps"], steps.text
    assert asked == [run_id]
