"""`/agents/{name}/memories` and `/memories/{id}` on top of the memories service."""

import httpx

from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider


async def test_memories_round_trip_add_list_search_delete(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    name = (await make_agent(api, provider["id"]))["name"]
    someone = (await make_agent(api, provider["id"]))["name"]
    first = await api.post(
        f"/api/v1/agents/{name}/memories",
        json={"content": "The invoice server lives at billing.internal", "tags": ["infra", " infra "]},
    )
    assert first.status_code == 201, first.text
    assert first.json()["agent_name"] == name
    assert first.json()["tags"] == ["infra"]
    second = await api.post(f"/api/v1/agents/{name}/memories", json={"content": "Alice prefers tea"})
    other = await api.post(f"/api/v1/agents/{someone}/memories", json={"content": "tea too"})
    assert other.status_code == 201

    listed = (await api.get(f"/api/v1/agents/{name}/memories")).json()
    assert [m["id"] for m in listed] == [second.json()["id"], first.json()["id"]]
    found = (await api.get(f"/api/v1/agents/{name}/memories", params={"q": "invoices"})).json()
    assert [m["id"] for m in found] == [first.json()["id"]]
    page = (await api.get(f"/api/v1/agents/{name}/memories", params={"limit": 1, "offset": 1})).json()
    assert [m["id"] for m in page] == [first.json()["id"]]

    deleted = await api.delete(f"/api/v1/memories/{first.json()['id']}")
    assert deleted.status_code == 204
    assert (await api.delete(f"/api/v1/memories/{first.json()['id']}")).status_code == 404
    listed = (await api.get(f"/api/v1/agents/{name}/memories")).json()
    assert [m["id"] for m in listed] == [second.json()["id"]]


async def test_memories_reject_bad_input_with_4xx(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/agents/Bad Name/memories", json={"content": "x"})).status_code == 422
    assert (await api.post("/api/v1/agents/ok-name/memories", json={"content": ""})).status_code == 422
    tags = {"content": "x", "tags": [f"t{i}" for i in range(30)]}
    assert (await api.post("/api/v1/agents/ok-name/memories", json=tags)).status_code == 422
    assert (await api.delete("/api/v1/memories/0")).status_code == 422
    assert (await anon.get("/api/v1/agents/ok-name/memories")).status_code == 401
