"""`GET /stats`: goals by status (Postgres), runs by status (Temporal), tokens (usage ledger)."""

import asyncio
from typing import Any

import httpx
from temporalio.client import Client

from tests.api.dag_helpers import make_dag, start
from tests.api.dag_helpers import wait_closed as dag_wait_closed
from tests.api.goal_helpers import SIMPLE_PLAN, make_goal, make_goal_agent, submit, wait_closed
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider


async def _stats(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/api/v1/stats")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_stats_count_goals_runs_and_tokens_of_finished_runs(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    before = await _stats(api)
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], max_tokens_per_run=1)
    await make_goal(api, agent["name"], status="paused")
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    await wait_closed(client, run_id)

    async with asyncio.timeout(30):  # run counts come from eventually consistent visibility
        while True:
            after = await _stats(api)
            if after["runs"]["failed"] > before["runs"]["failed"]:
                break
            await asyncio.sleep(0.3)
    assert after["goals"]["active"] == before["goals"]["active"] + 1
    assert after["goals"]["paused"] == before["goals"]["paused"] + 1
    assert after["goals_total"] == before["goals_total"] + 2
    # The run planned once (11 + 7 tokens) and stopped on its budget; the ledger recorded it.
    for window in ("today", "last_7_days"):
        assert after["tokens"][window]["total_tokens"] - before["tokens"][window]["total_tokens"] == 18
        assert after["tokens"][window]["runs"] - before["tokens"][window]["runs"] == 1
    assert after["tokens"]["last_7_days_by_kind"]["goal"]["input_tokens"] >= 11
    assert (await anon.get("/api/v1/stats")).status_code == 401


async def test_stats_count_agent_tasks_by_status(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> None:
    before = await _stats(api)
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    response = await api.post("/api/v1/task", data={"agent": agent["name"], "prompt": "hi"})
    assert response.status_code == 200, response.text
    async with asyncio.timeout(30):  # visibility is eventually consistent
        while True:
            after = await _stats(api)
            if after["tasks"]["succeeded"] > before["tasks"]["succeeded"]:
                break
            await asyncio.sleep(0.3)
    assert after["tasks"]["succeeded"] == before["tasks"]["succeeded"] + 1
    assert after["tasks"]["failed"] == before["tasks"]["failed"]


def _kind(stats: dict[str, Any], kind: str) -> int:
    found = stats["tokens"]["last_7_days_by_kind"].get(kind)
    return int(found["total_tokens"]) if found else 0


async def _grown(api: httpx.AsyncClient, before: dict[str, Any], kind: str, tokens: int) -> dict[str, Any]:
    """Stats once `kind` has grown by `tokens` (a run writes the ledger as it closes)."""
    async with asyncio.timeout(30):
        while True:
            after = await _stats(api)
            if _kind(after, kind) - _kind(before, kind) >= tokens:
                return after
            await asyncio.sleep(0.2)


async def test_stats_count_dag_planner_agent_test_and_experiment_tokens_once(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    """Every top-level run writes the ledger; a goal's DAG and an experiment's cells are counted
    in their parent only. Each fake model request costs 18 tokens."""
    before = await _stats(api)
    provider = await make_provider(api, fake_llm)
    writer = await make_agent(api, provider["id"])
    dag = await make_dag(api, {"nodes": [{"id": "say", "agent": writer["name"], "prompt": "hi"}]})

    await dag_wait_closed(api, await start(api, dag["id"]))
    await _grown(api, before, "dag", 18)

    tested = await api.post(f"/api/v1/agents/{writer['id']}/test", json={"prompt": "hi"})
    assert tested.status_code == 200, tested.text

    planner = await make_agent(api, provider["id"])
    fake_llm.script(planner["model"], submit(SIMPLE_PLAN))
    planned = await api.post("/api/v1/create-dag", json={"goal": "multiply", "agent": planner["name"]})
    assert planned.status_code == 201, planned.text

    matrix = [{"provider_id": provider["id"], "model": unique("fake-cell")} for _ in range(2)]
    experiment = await api.post("/api/v1/dag-experiments", json={"dag_id": dag["id"], "matrix": matrix})
    assert experiment.status_code == 200, experiment.text

    # A goal whose plan runs the agent: plan + node + summary, all in the goal's row.
    goal_agent = await make_goal_agent(
        api, fake_llm, plan={"name": "say", "nodes": [{"id": "say", "agent": writer["name"], "prompt": "hi"}]}
    )
    goal = await make_goal(api, goal_agent["name"])
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    await wait_closed(client, run_id)

    after = await _grown(api, before, "goal", 54)
    assert _kind(after, "dag") - _kind(before, "dag") == 18  # not the goal's DAG, not the cells
    assert _kind(after, "agent-test") - _kind(before, "agent-test") == 18
    assert _kind(after, "planner") - _kind(before, "planner") == 18
    assert _kind(after, "dag-experiment") - _kind(before, "dag-experiment") == 36
    assert _kind(after, "goal") - _kind(before, "goal") == 54
    total = after["tokens"]["last_7_days"]["total_tokens"] - before["tokens"]["last_7_days"]["total_tokens"]
    assert total == 18 + 18 + 18 + 36 + 54
