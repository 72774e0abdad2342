"""Records that name an agent must name one that exists: refused at the door, nothing stored."""

import httpx

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider


async def test_a_goal_naming_an_unknown_agent_is_422_and_stores_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    title = unique("goal")
    body = {"title": title, "objective": "o", "agent_name": unique("nobody")}
    response = await api.post("/api/v1/goals", json=body)
    assert response.status_code == 422, response.text
    assert "does not exist" in response.json()["detail"]
    goals = (await api.get("/api/v1/goals", params={"limit": 500})).json()
    assert title not in [g["title"] for g in goals]

    agent = await make_agent(api, (await make_provider(api, fake_llm))["id"])
    goal = await api.post("/api/v1/goals", json={**body, "agent_name": agent["name"]})
    assert goal.status_code == 201, goal.text
    patched = await api.patch(f"/api/v1/goals/{goal.json()['id']}", json={"agent_name": unique("nobody")})
    assert patched.status_code == 422, patched.text
    assert (await api.get(f"/api/v1/goals/{goal.json()['id']}")).json()["agent_name"] == agent["name"]


async def test_a_memory_for_an_unknown_agent_is_404_and_stores_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    name = unique("ghost")
    response = await api.post(f"/api/v1/agents/{name}/memories", json={"content": "x"})
    assert response.status_code == 404, response.text
    assert (await api.get(f"/api/v1/agents/{name}/memories")).json() == []
    agent = await make_agent(api, (await make_provider(api, fake_llm))["id"])
    stored = await api.post(f"/api/v1/agents/{agent['name']}/memories", json={"content": "x"})
    assert stored.status_code == 201, stored.text
