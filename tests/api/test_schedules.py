"""Goal schedules are Temporal Schedules `goal-<id>`; the API and Temporal agree on them."""

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleHandle,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError

from api.main import create_app
from contracts.search import GOAL_ID, RUN_KIND
from core.settings import Settings
from services.schedules import describe_schedules
from tests.api.goal_helpers import make_goal, make_goal_agent, wait_closed, wait_visible
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI


async def paused_state(handle: ScheduleHandle, want: bool) -> ScheduleDescription:
    """Describe until the schedule's paused flag is `want` (a patch is applied asynchronously)."""
    async with asyncio.timeout(10):
        while True:
            described = await handle.describe()
            if described.schedule.state.paused == want:
                return described
            await asyncio.sleep(0.1)


async def test_cron_goal_schedule_is_created_triggered_paused_and_resumed(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], schedule="*/5 * * * *", timezone="Europe/Berlin")
    schedule_id = f"goal-{goal['id']}"
    assert goal["schedule_id"] == schedule_id
    handle = client.get_schedule_handle(schedule_id)

    described = await handle.describe()
    assert not described.schedule.state.paused
    assert described.schedule.spec.time_zone_name == "Europe/Berlin"
    assert len(described.info.next_action_times) > 0
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "GoalWorkflow"
    assert action.typed_search_attributes.get(GOAL_ID) == str(goal["id"])
    assert action.typed_search_attributes.get(RUN_KIND) == "goal"
    [info] = [s for s in await describe_schedules(client, "goal-") if s.id == schedule_id]
    assert info.cron == "*/5 * * * *"

    await handle.trigger()
    [started] = await wait_visible(client, f"GoalId = '{goal['id']}' AND RunKind = 'goal'", 1)
    assert started.id.startswith(f"{schedule_id}-")
    assert await wait_closed(client, started.id) == WorkflowExecutionStatus.COMPLETED

    paused = await api.post(f"/api/v1/goals/{goal['id']}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    described = await paused_state(handle, True)
    assert described.schedule.state.note == "goal is paused"

    resumed = await api.post(f"/api/v1/goals/{goal['id']}/resume")
    assert resumed.json()["status"] == "active"
    assert (await paused_state(handle, False)).schedule.state.note == "goal is active"


async def test_changing_the_cron_updates_the_schedule_and_keeps_it_paused(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], schedule="0 9 * * 1", status="paused")
    handle = client.get_schedule_handle(f"goal-{goal['id']}")
    assert (await handle.describe()).schedule.state.paused

    response = await api.patch(f"/api/v1/goals/{goal['id']}", json={"schedule": "30 6 * * *"})
    assert response.status_code == 200, response.text
    described = await handle.describe()
    assert described.schedule.state.paused
    [calendar] = described.schedule.spec.calendars
    assert calendar.hour[0].start == 6 and calendar.minute[0].start == 30
    [info] = [s for s in await describe_schedules(client, "goal-") if s.id == f"goal-{goal['id']}"]
    assert info.cron == "30 6 * * *" and info.paused

    removed = await api.patch(f"/api/v1/goals/{goal['id']}", json={"schedule": None})
    assert removed.json()["schedule_id"] is None
    with pytest.raises(RPCError):
        await handle.describe()


async def test_deleting_a_goal_deletes_its_schedule(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], schedule="@daily")
    handle = client.get_schedule_handle(f"goal-{goal['id']}")
    await handle.describe()

    response = await api.delete(f"/api/v1/goals/{goal['id']}")
    assert response.status_code == 204
    with pytest.raises(RPCError):
        await handle.describe()
    assert (await api.get(f"/api/v1/goals/{goal['id']}")).status_code == 404


async def test_goal_creation_is_rolled_back_when_its_schedule_cannot_be_created(
    api: httpx.AsyncClient, settings: Settings, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    title = unique("doomed")
    # The same server, a namespace that does not exist: every schedule call fails.
    broken = create_app(settings.model_copy(update={"temporal_namespace": unique("missing-ns")}))
    async with (
        LifespanManager(broken),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=broken), base_url="http://api", headers=api.headers
        ) as other,
    ):
        response = await other.post(
            "/api/v1/goals",
            json={"title": title, "objective": "x", "agent_name": agent["name"], "schedule": "@hourly"},
        )
    assert response.status_code == 502, response.text
    assert "could not create or update schedule goal-" in response.json()["detail"]
    assert response.json()["error"] == "ScheduleError"
    listed = (await api.get("/api/v1/goals", params={"limit": 500})).json()
    assert title not in [g["title"] for g in listed]


async def test_invalid_cron_or_timezone_is_422_and_creates_nothing(api: httpx.AsyncClient) -> None:
    for bad in ({"schedule": "every monday"}, {"schedule": "0 0 * * * *"}, {"timezone": "Mars/Base"}):
        response = await api.post(
            "/api/v1/goals", json={"title": "t", "objective": "o", "agent_name": "a", **bad}
        )
        assert response.status_code == 422, (bad, response.text)
