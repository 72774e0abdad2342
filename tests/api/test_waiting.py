"""Requests that answer from a workflow never hang: 503 at once without a worker, 202 with the
workflow id after WAIT_TIMEOUT_S, and work nobody waits for is not started late."""

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from core.settings import Settings
from services.waiting import live_pollers
from tests.conftest import api_client, unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from worker import build_worker


def api_with(settings: Settings, **changes: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """The API with changed settings (another task queue, a shorter wait)."""
    return api_client(settings.model_copy(update=changes))


async def _workflows_of(client: Client, agent_name: str) -> list[str]:
    return [wf.id async for wf in client.list_workflows(f'AgentName="{agent_name}"')]


async def test_agent_test_without_a_worker_answers_503_at_once_and_starts_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    async with api_with(settings, task_queue=unique("no-worker")) as lonely:
        started = time.monotonic()
        response = await lonely.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "hi"})
        elapsed = time.monotonic() - started
        task = await lonely.post("/api/v1/task", data={"agent": agent["name"], "prompt": "hi"})
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "NoWorker"
    assert "no worker is polling" in response.json()["detail"]
    assert elapsed < 30
    assert task.status_code == 503, task.text
    await asyncio.sleep(1)  # visibility is eventually consistent
    assert await _workflows_of(client, agent["name"]) == []
    assert fake_llm.calls(agent["model"]) == []
    artifacts = (await api.get("/api/v1/artifacts", params={"limit": 200})).json()
    assert not any((a.get("workflow_id") or "").startswith(f"task-{agent['name']}") for a in artifacts)


async def test_slow_agent_test_answers_202_with_the_workflow_to_follow(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])

    fake_llm.slow(agent["model"], 8)
    # Long enough for a busy worker to pick the workflow up, far shorter than the model's answer.
    async with api_with(settings, wait_timeout_s=3) as impatient:
        response = await impatient.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "later"})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["workflow_id"].startswith(f"agent-test-{agent['id']}-")
        assert body["follow_url"] == f"/api/v1/workflows/{body['workflow_id']}"
        assert body["web_ui_url"].endswith(f"/workflows/{body['workflow_id']}")
        followed = (await impatient.get(body["follow_url"])).json()
        assert followed["status"] == "running"
        for _ in range(300):
            followed = (await impatient.get(body["follow_url"])).json()
            if followed["status"] != "running":
                break
            await asyncio.sleep(0.2)
    assert followed["status"] == "succeeded", followed
    assert followed["result"]["output"] == "echo: later"


async def test_work_no_worker_picked_up_is_stopped_not_started_late(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    queue = unique("gone-worker")
    gone = settings.model_copy(update={"task_queue": queue})
    async with build_worker(client, gone):  # polls once, then is gone (its poll is still "recent")
        for _ in range(50):
            if await live_pollers(client, gone):
                break
            await asyncio.sleep(0.1)
    async with api_with(settings, task_queue=queue, wait_timeout_s=1) as impatient:
        response = await impatient.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "late"})
    assert response.status_code == 503, response.text
    assert "no worker picked up" in response.json()["detail"]
    workflow_id = response.json()["detail"].split("workflow ")[1].split(" ")[0]
    handle = client.get_workflow_handle(workflow_id)
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    async with build_worker(client, gone):  # the worker comes back: nothing runs late
        await asyncio.sleep(2)
    assert fake_llm.calls(agent["model"]) == []


async def test_following_an_unknown_or_foreign_workflow_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/workflows/agent-test-1-00000000")).status_code == 404
    foreign = await api.get("/api/v1/workflows/goal-1-00000000")
    assert foreign.status_code == 404
    assert "not one a request hands out" in foreign.json()["detail"]


async def test_planner_without_a_worker_answers_503_and_stores_no_dag(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    name = unique("unplanned")
    async with api_with(settings, task_queue=unique("no-worker")) as lonely:
        response = await lonely.post("/api/v1/create-dag", json={"goal": "anything", "name": name})
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "NoWorker"
    assert (await api.get("/api/v1/dags", params={"name": name})).json() == []
