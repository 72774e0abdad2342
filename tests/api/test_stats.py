"""`GET /stats`: goals by status (Postgres), runs by status (Temporal), tokens (usage ledger)."""

import asyncio
from typing import Any

import httpx
from temporalio.client import Client

from tests.api.goal_helpers import make_goal, make_goal_agent, wait_closed
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
