"""Goals: CRUD, and a run that plans a DAG, runs it as a child workflow and writes a report."""

from typing import Any

import httpx
from sqlmodel import col, update
from temporalio.client import Client, WorkflowExecutionStatus

from contracts.search import GOAL_ID, RUN_KIND
from core.db import session_scope
from core.models import Agent
from core.settings import Settings
from tests.api.goal_helpers import (
    SIMPLE_PLAN,
    SUMMARIZER_MODEL,
    make_goal,
    make_goal_agent,
    use_fake_summarizer,
    wait_closed,
)
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

INVALID_PLAN = {"name": "broken", "nodes": [{"id": "a", "tool": "no_such_tool"}]}


async def test_goal_crud_with_status_filter_and_pagination(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agent_name = (await make_agent(api, (await make_provider(api, fake_llm))["id"]))["name"]
    created = [await make_goal(api, agent_name, params={"n": i}, max_tokens_per_run=1000) for i in range(3)]
    first = created[0]
    assert first["status"] == "active" and first["schedule_id"] is None
    assert first["timezone"] == "UTC" and first["params"] == {"n": 0}

    fetched = await api.get(f"/api/v1/goals/{first['id']}")
    assert fetched.json() == first
    patched = await api.patch(f"/api/v1/goals/{first['id']}", json={"status": "completed", "title": "done"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "done" and patched.json()["status"] == "completed"

    completed = (await api.get("/api/v1/goals", params={"status": "completed", "limit": 500})).json()
    assert first["id"] in [g["id"] for g in completed]
    assert all(g["status"] == "completed" for g in completed)
    active = (await api.get("/api/v1/goals", params={"status": "active", "limit": 500})).json()
    assert {created[1]["id"], created[2]["id"]} <= {g["id"] for g in active}
    page = (await api.get("/api/v1/goals", params={"limit": 1, "offset": 1})).json()
    newest_two = (await api.get("/api/v1/goals", params={"limit": 2})).json()
    assert page == newest_two[1:]

    assert (await api.get("/api/v1/goals", params={"status": "bogus"})).status_code == 422
    assert (
        await api.patch(f"/api/v1/goals/{first['id']}", json={"max_tokens_per_run": 0})
    ).status_code == 422
    assert (await api.delete(f"/api/v1/goals/{first['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/goals/{first['id']}")).status_code == 404
    assert (await api.post(f"/api/v1/goals/{first['id']}/run")).status_code == 404


def _asked_about(fake: FakeOpenAI, model: str, goal: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests to `model` whose messages name this goal (the summary prompt starts with its title)."""
    return [c for c in fake.calls(model) if goal["title"] in str(c["body"]["messages"])]


async def test_goal_run_plans_runs_the_dag_as_a_child_and_the_summarizer_writes_the_report(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    summarizer = await use_fake_summarizer(api, fake_llm)
    goal = await make_goal(api, agent["name"])

    started = await api.post(f"/api/v1/goals/{goal['id']}/run")
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert run_id.startswith(f"goal-{goal['id']}-")
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.COMPLETED

    run = (await api.get(f"/api/v1/runs/{run_id}")).json()
    assert run["status"] == "succeeded" and run["goal_id"] == goal["id"]
    result = run["result"]
    assert [s["id"] for s in result["steps"]] == ["plan", "calc", "echo", "summary"]
    assert all(s["status"] == "succeeded" for s in result["steps"])
    assert result["plan"]["name"] == SIMPLE_PLAN["name"]
    # One planning request and one summary request, 11 + 7 tokens each; the DAG used tools only.
    assert result["usage"] == {"requests": 2, "input_tokens": 22, "output_tokens": 14}
    assert run["usage"] == result["usage"]
    [report] = result["artifacts"]
    assert report.endswith("-report.md")
    text = (await api.get(f"/api/v1/artifacts/{report}")).text
    assert goal["title"] in text and "report:" in text

    # The goal's agent only planned; the summary prompt, with the DAG's output, went to the
    # model of the `summarizer` version pinned at the start.
    assert len(fake_llm.calls(agent["model"])) == 1
    [summary_call] = _asked_about(fake_llm, SUMMARIZER_MODEL, goal)
    assert "42" in str(summary_call["body"]["messages"])
    assert (result["summary_agent_name"], result["summary_agent_version"]) == (
        "summarizer",
        summarizer["version"],
    )
    child = await client.get_workflow_handle(result["dag_workflow_id"]).describe()
    assert child.workflow_type == "DagWorkflow"
    assert child.typed_search_attributes.get(GOAL_ID) == str(goal["id"])
    parent = await client.get_workflow_handle(run_id).describe()
    assert parent.typed_search_attributes.get(RUN_KIND) == "goal"
    assert await parent.static_summary() == f"Goal {goal['id']}: {goal['title']}"


async def test_goal_run_degrades_to_one_agent_step_and_says_so_when_no_plan_validates(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm, plan=INVALID_PLAN)
    goal = await make_goal(api, agent["name"])
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.COMPLETED

    steps = (await api.get(f"/api/v1/runs/{run_id}/steps")).json()
    assert steps["phase"] == "finished"
    plan, answer, summary = steps["steps"]
    assert plan["status"] == "failed"
    assert plan["detail"].startswith("degraded: the planner produced no valid DAG")
    assert "no valid DAG" in plan["error"]
    assert (answer["id"], answer["status"]) == ("answer", "succeeded")
    assert summary["status"] == "succeeded"


async def test_goal_run_without_a_summarizer_has_the_goals_agent_write_the_report_and_says_so(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    summarizer = await use_fake_summarizer(api, fake_llm)
    goal = await make_goal(api, agent["name"])
    async with session_scope(settings) as session:  # no active `summarizer` (no API does this)
        await session.exec(update(Agent).where(col(Agent.name) == "summarizer").values(is_active=False))
        await session.commit()
    try:
        run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
        assert await wait_closed(client, run_id) == WorkflowExecutionStatus.COMPLETED
    finally:
        restored = await api.post(f"/api/v1/agents/{summarizer['id']}/activate")
        assert restored.status_code == 200, restored.text

    run = (await api.get(f"/api/v1/runs/{run_id}")).json()
    summary = run["result"]["steps"][-1]
    assert (summary["id"], summary["status"]) == ("summary", "succeeded")
    assert summary["detail"].startswith(
        f"no active 'summarizer' agent, so the goal's own agent {agent['name']!r} writes the report: report:"
    )
    assert run["result"]["summary_agent_name"] == agent["name"]
    assert len(fake_llm.calls(agent["model"])) == 2  # the plan, then the report
    assert _asked_about(fake_llm, SUMMARIZER_MODEL, goal) == []


async def test_goal_run_stops_with_token_budget_exceeded(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], max_tokens_per_run=10)
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.FAILED

    run = (await api.get(f"/api/v1/runs/{run_id}")).json()
    assert run["failure"]["type"] == "TokenBudgetExceeded"
    assert "18 tokens used, budget 10" in run["failure"]["message"]
    assert run["usage"]["input_tokens"] + run["usage"]["output_tokens"] == 18
    # Planning used the budget up: nothing was started after it.
    assert len(fake_llm.calls(agent["model"])) == 1
    assert run["dag_workflow_id"] is None


async def test_goal_run_without_an_active_agent_fails_typed_and_archived_goal_refuses_runs(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    agent = await make_agent(api, (await make_provider(api, fake_llm))["id"])
    goal = await make_goal(api, agent["name"])
    async with session_scope(settings) as session:  # its only version stops being active
        await session.exec(update(Agent).where(col(Agent.name) == agent["name"]).values(is_active=False))
        await session.commit()
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.FAILED
    assert (await api.get(f"/api/v1/runs/{run_id}")).json()["failure"]["type"] == "AgentNotFound"

    await api.patch(f"/api/v1/goals/{goal['id']}", json={"status": "archived"})
    refused = await api.post(f"/api/v1/goals/{goal['id']}/run")
    assert refused.status_code == 409
    assert (await api.post(f"/api/v1/goals/{goal['id']}/resume")).status_code == 409


async def test_goal_run_stops_when_the_dag_crosses_the_remaining_budget(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent_name = unique("asker")
    plan = {"name": "ask", "nodes": [{"id": "ask", "agent": agent_name, "prompt": "Say hi."}]}
    agent = await make_goal_agent(api, fake_llm, plan=plan, name=agent_name)
    goal = await make_goal(api, agent["name"], max_tokens_per_run=30)
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.FAILED

    run = (await api.get(f"/api/v1/runs/{run_id}")).json()
    assert run["failure"]["type"] == "TokenBudgetExceeded"
    # Planning (18) left 12 tokens for the DAG; its agent node used 18 and the DAG stopped.
    assert run["usage"]["input_tokens"] + run["usage"]["output_tokens"] == 36
    steps = (await api.get(f"/api/v1/runs/{run_id}/steps")).json()
    assert [(s["id"], s["status"]) for s in steps["steps"]] == [
        ("plan", "succeeded"),
        ("ask", "succeeded"),
        ("summary", "skipped"),
    ]


async def test_goal_with_only_title_and_objective_uses_the_default_planner(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/goals", json={"title": "t", "objective": "say hello"})
    assert created.status_code == 201
    assert created.json()["agent_name"] == "planner"


async def test_llm_provider_none_refuses_a_run_at_once_naming_what_to_configure(
    api: httpx.AsyncClient, settings: Settings, fake_llm: FakeOpenAI
) -> None:
    agent = await make_agent(api, (await make_provider(api, fake_llm))["id"])
    goal = await make_goal(api, agent["name"])
    async with session_scope(settings) as session:  # as if nothing were set up by hand
        await session.exec(update(Agent).where(col(Agent.name) == agent["name"]).values(is_active=False))
        await session.commit()
    previous = settings.llm_provider
    settings.llm_provider = "none"  # the app serves this very settings object
    try:
        refused = await api.post(f"/api/v1/goals/{goal['id']}/run")
    finally:
        settings.llm_provider = previous
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "LLM_PROVIDER=none" in detail and "OPENAI_API_KEY" in detail and "LLM_PROVIDER=local" in detail
