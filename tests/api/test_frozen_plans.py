"""Frozen plans (`plan: "once"`): the first validated plan is kept as a versioned DAG of the goal,
later runs (manual or scheduled) execute it without a planner call, `POST /goals/{id}/replan` and
`replan_after_failures` failed runs in a row make the next run plan the next version, and
`plan: "every_run"` goals plan on every run as before."""

from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from tests.api.goal_helpers import (
    make_goal,
    make_goal_agent,
    planner_then_echo,
    wait_closed,
    wait_visible,
)
from tests.fakes.openai_server import FakeOpenAI
from workflows.planning import PLAN_TOOL

OTHER_PLAN: dict[str, Any] = {
    "name": "add",
    "nodes": [{"id": "sum", "tool": "calculator", "input": {"expression": "{{params.expr}}"}}],
    "params": {"expr": "1 + 1"},
}
NEVER = "0 0 1 1 *"
"""A cron that does not fire while a test runs: its schedule's runs are triggered by hand."""


def planner_requests(fake: FakeOpenAI, agent: dict[str, Any]) -> int:
    """Requests the fake LLM received that asked the goal's agent for a plan."""
    return sum(
        1
        for call in fake.calls(agent["model"])
        if PLAN_TOOL in [t["function"]["name"] for t in call["body"].get("tools") or []]
    )


async def run_goal(
    api: httpx.AsyncClient, client: Client, goal_id: int, expect: WorkflowExecutionStatus
) -> dict[str, Any]:
    """Run the goal now, wait until it closes with `expect`; the run as `GET /runs/{id}` shows it."""
    started = await api.post(f"/api/v1/goals/{goal_id}/run")
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert await wait_closed(client, run_id) == expect
    run = await api.get(f"/api/v1/runs/{run_id}")
    assert run.status_code == 200, run.text
    return dict(run.json())


async def get_goal(api: httpx.AsyncClient, goal_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/v1/goals/{goal_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_plan_once_goal_plans_once_then_its_scheduled_run_executes_the_frozen_dag_without_the_planner(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], plan="once", schedule=NEVER)
    assert (goal["plan"], goal["plan_version"], goal["plan_dag_id"]) == ("once", None, None)

    first = await run_goal(api, client, goal["id"], WorkflowExecutionStatus.COMPLETED)
    assert planner_requests(fake_llm, agent) == 1
    shown = await get_goal(api, goal["id"])
    dag_id = shown["plan_dag_id"]
    assert shown["plan_version"] == 1 and isinstance(dag_id, int)
    assert (first["result"]["plan_version"], first["result"]["plan_dag_id"]) == (1, dag_id)
    assert first["result"]["steps"][0]["detail"].endswith(f"frozen as plan v1 (DAG {dag_id})")
    stored = (await api.get(f"/api/v1/dags/{dag_id}")).json()
    assert [n["id"] for n in stored["spec"]["nodes"]] == ["calc", "echo"]
    assert f"goal {goal['id']}" in stored["description"]

    # The goal's Temporal Schedule fires (triggered by hand): no planner request, the same DAG.
    await client.get_schedule_handle(f"goal-{goal['id']}").trigger()
    runs = await wait_visible(client, f"GoalId = '{goal['id']}' AND RunKind = 'goal'", 2)
    [scheduled_id] = [r.id for r in runs if r.id != first["id"]]
    assert await wait_closed(client, scheduled_id) == WorkflowExecutionStatus.COMPLETED
    scheduled = (await api.get(f"/api/v1/runs/{scheduled_id}")).json()
    assert planner_requests(fake_llm, agent) == 1
    result = scheduled["result"]
    assert (result["plan_version"], result["plan_dag_id"]) == (1, dag_id)
    assert result["plan"] == first["result"]["plan"]
    plan_step = result["steps"][0]
    assert plan_step["detail"] == f"frozen plan v1 (DAG {dag_id}): 2 node(s), not re-planned"
    assert plan_step["status"] == "succeeded" and plan_step["usage"]["requests"] == 0
    assert [s["status"] for s in result["steps"]] == ["succeeded"] * 4
    assert result["usage"]["requests"] == 1  # the summary only
    # The runs' DAG executions name the stored DAG (`GET /dags/{id}/executions`, `DagId` in Temporal).
    children = await wait_visible(client, f'DagId = "{dag_id}"', 2)
    assert result["dag_workflow_id"] in {c.id for c in children}
    assert (await get_goal(api, goal["id"]))["plan_version"] == 1

    # Deleting the goal deletes its schedule and plan versions; the DAG its runs name stays.
    assert (await api.delete(f"/api/v1/goals/{goal['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/goals/{goal['id']}")).status_code == 404
    assert (await api.get(f"/api/v1/dags/{dag_id}")).status_code == 200


async def test_replan_makes_the_next_run_plan_and_store_the_next_version_which_later_runs_reuse(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], plan="once")
    await run_goal(api, client, goal["id"], WorkflowExecutionStatus.COMPLETED)
    first_dag = (await get_goal(api, goal["id"]))["plan_dag_id"]

    replanned = await api.post(f"/api/v1/goals/{goal['id']}/replan")
    assert replanned.status_code == 200, replanned.text
    assert (replanned.json()["plan_version"], replanned.json()["plan_dag_id"]) == (None, None)
    assert (await api.post(f"/api/v1/goals/{goal['id']}/replan")).status_code == 200  # idempotent

    fake_llm.handlers[agent["model"]] = planner_then_echo(OTHER_PLAN)
    second = await run_goal(api, client, goal["id"], WorkflowExecutionStatus.COMPLETED)
    assert planner_requests(fake_llm, agent) == 2
    assert second["result"]["plan"]["name"] == "add" and second["result"]["plan_version"] == 2
    shown = await get_goal(api, goal["id"])
    assert shown["plan_version"] == 2 and shown["plan_dag_id"] not in (None, first_dag)

    third = await run_goal(api, client, goal["id"], WorkflowExecutionStatus.COMPLETED)
    assert planner_requests(fake_llm, agent) == 2
    assert (third["result"]["plan_version"], third["result"]["plan_dag_id"]) == (2, shown["plan_dag_id"])
    assert [s["id"] for s in third["result"]["steps"]] == ["plan", "sum", "summary"]

    # A new objective retires the plan made for the old one; a title does not.
    await api.patch(f"/api/v1/goals/{goal['id']}", json={"title": "renamed"})
    assert (await get_goal(api, goal["id"]))["plan_version"] == 2
    edited = await api.patch(f"/api/v1/goals/{goal['id']}", json={"objective": "Add one and one."})
    assert edited.status_code == 200 and edited.json()["plan_version"] is None


async def test_replan_after_failures_retires_the_plan_after_n_failed_runs_in_a_row(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    bad, good = {"expr": "1 / 0"}, {"expr": "6 * 7"}
    goal = await make_goal(api, agent["name"], plan="once", replan_after_failures=2, params=bad)
    assert goal["replan_after_failures"] == 2

    async def run_with(params: dict[str, str], expect: WorkflowExecutionStatus) -> dict[str, Any]:
        assert (await api.patch(f"/api/v1/goals/{goal['id']}", json={"params": params})).status_code == 200
        await run_goal(api, client, goal["id"], expect)
        return await get_goal(api, goal["id"])

    failed, succeeded = WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.COMPLETED
    # The first run plans v1 and fails: one failure. A success in between resets the count.
    shown = await run_with(bad, failed)
    assert (shown["plan_version"], shown["plan_failures"]) == (1, 1)
    shown = await run_with(good, succeeded)
    assert (shown["plan_version"], shown["plan_failures"]) == (1, 0)
    shown = await run_with(bad, failed)
    assert (shown["plan_version"], shown["plan_failures"]) == (1, 1)
    assert planner_requests(fake_llm, agent) == 1
    # The second failure in a row retires v1: the next run plans v2.
    shown = await run_with(bad, failed)
    assert (shown["plan_version"], shown["plan_dag_id"], shown["plan_failures"]) == (None, None, 0)
    assert planner_requests(fake_llm, agent) == 1
    shown = await run_with(good, succeeded)
    assert planner_requests(fake_llm, agent) == 2
    assert (shown["plan_version"], shown["plan_failures"]) == (2, 0)


async def test_every_run_goal_plans_on_every_run_and_keeps_no_frozen_plan(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"])
    assert (goal["plan"], goal["replan_after_failures"], goal["plan_version"]) == ("every_run", None, None)
    for count in (1, 2):
        run = await run_goal(api, client, goal["id"], WorkflowExecutionStatus.COMPLETED)
        assert planner_requests(fake_llm, agent) == count
        assert run["result"]["plan_version"] is None and run["result"]["plan_dag_id"] is None
        assert run["result"]["steps"][0]["detail"] == "2 node(s) in 1 attempt(s)"
    assert (await get_goal(api, goal["id"]))["plan_version"] is None
    refused = await api.post(f"/api/v1/goals/{goal['id']}/replan")
    assert refused.status_code == 409 and "plans on every run" in refused.json()["detail"]


async def test_switching_a_plan_once_goal_to_every_run_retires_its_plan(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], plan="once")
    await run_goal(api, client, goal["id"], WorkflowExecutionStatus.COMPLETED)
    assert (await get_goal(api, goal["id"]))["plan_version"] == 1
    switched = await api.patch(f"/api/v1/goals/{goal['id']}", json={"plan": "every_run"})
    assert switched.status_code == 200 and switched.json()["plan_version"] is None
    back = await api.patch(f"/api/v1/goals/{goal['id']}", json={"plan": "once"})
    assert back.json()["plan_version"] is None  # the next run plans v2
    run = await run_goal(api, client, goal["id"], WorkflowExecutionStatus.COMPLETED)
    assert run["result"]["plan_version"] == 2 and planner_requests(fake_llm, agent) == 2


async def test_bad_plan_settings_are_refused_with_422_and_change_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    body = {"title": "t", "objective": "o", "agent_name": agent["name"]}
    before = len((await api.get("/api/v1/goals", params={"limit": 500})).json())
    for bad in (
        {"plan": "sometimes"},
        {"plan": None},
        {"plan": 1},
        {"replan_after_failures": 0},
        {"replan_after_failures": -1},
        {"replan_after_failures": 1001},
        {"replan_after_failures": "often"},
    ):
        refused = await api.post("/api/v1/goals", json=body | bad)
        assert refused.status_code == 422, (bad, refused.text)
        [problem] = refused.json()["detail"]
        assert problem["loc"][-1] == next(iter(bad)), refused.text
    assert len((await api.get("/api/v1/goals", params={"limit": 500})).json()) == before

    goal = await make_goal(api, agent["name"], plan="once", replan_after_failures=3)
    for bad in ({"plan": "never"}, {"replan_after_failures": 0}):
        assert (await api.patch(f"/api/v1/goals/{goal['id']}", json=bad)).status_code == 422
    nulled = await api.patch(f"/api/v1/goals/{goal['id']}", json={"plan": None})
    assert nulled.status_code == 422 and nulled.json()["detail"] == "plan cannot be null"
    shown = await get_goal(api, goal["id"])
    assert (shown["plan"], shown["replan_after_failures"]) == ("once", 3)
    removed = await api.patch(f"/api/v1/goals/{goal['id']}", json={"replan_after_failures": None})
    assert removed.json()["replan_after_failures"] is None
    assert (await api.post("/api/v1/goals/999999/replan")).status_code == 404
    assert (await api.post("/api/v1/goals/0/replan")).status_code == 422
