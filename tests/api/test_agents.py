"""Versioned agents through HTTP: versions, activation, resolution, filters and references."""

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

AGENTS = "/api/v1/agents"


@pytest.fixture
async def provider(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> dict[str, Any]:
    return await make_provider(api, fake_llm)


async def _versions(api: httpx.AsyncClient, name: str, **params: Any) -> list[dict[str, Any]]:
    response = await api.get(AGENTS, params={"name": name, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def test_same_name_gets_next_version_and_only_first_is_active(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("versioned")
    v1 = await make_agent(api, provider["id"], name=name)
    v2 = await make_agent(api, provider["id"], name=name, system_prompt="v2")
    assert (v1["version"], v1["is_active"]) == (1, True)
    assert (v2["version"], v2["is_active"]) == (2, False)
    assert v2["system_prompt"] == "v2"
    rows = await _versions(api, name)
    assert [(a["version"], a["is_active"]) for a in rows] == [(1, True), (2, False)]


async def test_create_with_activate_true_switches_the_active_version(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("activate-on-create")
    await make_agent(api, provider["id"], name=name)
    v2 = await make_agent(api, provider["id"], name=name, activate=True)
    assert v2["is_active"] is True
    active = await _versions(api, name, active="true")
    assert [a["id"] for a in active] == [v2["id"]]


async def test_first_version_created_inactive_when_asked(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("inactive-first")
    v1 = await make_agent(api, provider["id"], name=name, activate=False)
    assert v1["is_active"] is False
    assert (await api.get(f"{AGENTS}/resolve/{name}")).status_code == 404


async def test_activate_leaves_exactly_one_active_version_per_name(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("one-active")
    other = await make_agent(api, provider["id"], name=unique("bystander"))
    versions = [await make_agent(api, provider["id"], name=name) for _ in range(3)]
    for target in (versions[2], versions[1], versions[1], versions[0]):
        response = await api.post(f"{AGENTS}/{target['id']}/activate")
        assert response.status_code == 200, response.text
        assert response.json()["is_active"] is True
        active = await _versions(api, name, active="true")
        assert [a["id"] for a in active] == [target["id"]]
        inactive = await _versions(api, name, active="false")
        assert sorted(a["id"] for a in inactive) == sorted(
            v["id"] for v in versions if v["id"] != target["id"]
        )
    # Activating one name never touches another name's active version.
    assert (await api.get(f"{AGENTS}/{other['id']}")).json()["is_active"] is True


async def test_resolve_returns_active_version_and_404_when_none(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("resolve")
    await make_agent(api, provider["id"], name=name)
    v2 = await make_agent(api, provider["id"], name=name)
    await api.post(f"{AGENTS}/{v2['id']}/activate")
    response = await api.get(f"{AGENTS}/resolve/{name}")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["version"]) == (v2["id"], 2)

    missing = await api.get(f"{AGENTS}/resolve/{unique('nobody')}")
    assert missing.status_code == 404
    assert "no active version" in missing.json()["detail"]


async def test_list_filters_by_name_and_active_and_paginates(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("paged")
    ids = [(await make_agent(api, provider["id"], name=name))["id"] for _ in range(5)]
    all_rows = await _versions(api, name)
    assert [a["id"] for a in all_rows] == ids
    assert all(a["name"] == name for a in all_rows)
    first = await _versions(api, name, limit=2)
    second = await _versions(api, name, limit=2, offset=2)
    last = await _versions(api, name, limit=2, offset=4)
    assert [a["id"] for a in first + second + last] == ids
    assert len(last) == 1
    assert await _versions(api, name, offset=5) == []
    # Without a name filter, `active=true` answers only active versions.
    response = await api.get(AGENTS, params={"active": "true", "limit": 500})
    assert response.status_code == 200
    assert all(a["is_active"] for a in response.json())
    assert ids[0] in [a["id"] for a in response.json()]


async def test_patch_makes_the_next_version_and_leaves_the_edited_one_as_it_was(
    api: httpx.AsyncClient, provider: dict[str, Any], fake_llm: FakeOpenAI
) -> None:
    agent = await make_agent(api, provider["id"])
    other_provider = await make_provider(api, fake_llm)
    response = await api.patch(
        f"{AGENTS}/{agent['id']}",
        json={
            "model": "fake-large",
            "temperature": 1.5,
            "max_tokens": 256,
            "provider_id": other_provider["id"],
            "output_schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
        },
    )
    assert response.status_code == 200, response.text
    v2 = response.json()
    assert v2["id"] != agent["id"]
    assert (v2["name"], v2["version"], v2["is_active"]) == (agent["name"], 2, True)
    assert (v2["model"], v2["temperature"], v2["max_tokens"]) == ("fake-large", 1.5, 256)
    assert v2["provider_id"] == other_provider["id"]
    assert v2["output_schema"]["properties"] == {"a": {"type": "integer"}}
    assert v2["system_prompt"] == "You are terse."  # unchanged fields carry over
    assert (await api.get(f"{AGENTS}/{v2['id']}")).json() == v2
    v1 = (await api.get(f"{AGENTS}/{agent['id']}")).json()
    assert {k: v1[k] for k in ("model", "temperature", "provider_id", "output_schema", "version")} == {
        "model": agent["model"],
        "temperature": 0.2,
        "provider_id": provider["id"],
        "output_schema": None,
        "version": 1,
    }
    assert v1["is_active"] is False
    resolved = (await api.get(f"{AGENTS}/resolve/{agent['name']}")).json()
    assert resolved["id"] == v2["id"]

    # Editing an inactive version makes an inactive one; a patch that changes nothing makes none.
    v3 = (await api.patch(f"{AGENTS}/{agent['id']}", json={"system_prompt": "Be kind."})).json()
    assert (v3["version"], v3["is_active"], v3["model"]) == (3, False, agent["model"])
    same = await api.patch(f"{AGENTS}/{v3['id']}", json={"system_prompt": "Be kind."})
    assert same.json()["id"] == v3["id"]
    assert [a["version"] for a in await _versions(api, agent["name"])] == [1, 2, 3]
    assert (await api.get(f"{AGENTS}/999999")).status_code == 404
    assert (await api.patch(f"{AGENTS}/999999", json={"model": "x"})).status_code == 404


async def test_output_schema_that_is_not_a_json_schema_is_422_and_stores_nothing(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("schema")
    bad = {"type": "nonsense"}
    body = {"name": name, "provider_id": provider["id"], "model": "fake-small", "output_schema": bad}
    response = await api.post(AGENTS, json=body)
    assert response.status_code == 422, response.text
    assert "not a valid JSON schema" in str(response.json()["detail"])
    assert await _versions(api, name) == []
    agent = await make_agent(api, provider["id"])
    patched = await api.patch(f"{AGENTS}/{agent['id']}", json={"output_schema": {"properties": 3}})
    assert patched.status_code == 422, patched.text
    assert [a["version"] for a in await _versions(api, agent["name"])] == [1]


async def test_delete_inactive_version_and_refuse_active_one(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("delete")
    v1 = await make_agent(api, provider["id"], name=name)
    v2 = await make_agent(api, provider["id"], name=name)
    refused = await api.delete(f"{AGENTS}/{v1['id']}")
    assert refused.status_code == 409
    assert "active" in refused.json()["detail"]
    assert (await api.get(f"{AGENTS}/{v1['id']}")).status_code == 200

    assert (await api.delete(f"{AGENTS}/{v2['id']}")).status_code == 204
    assert (await api.get(f"{AGENTS}/{v2['id']}")).status_code == 404
    assert [a["id"] for a in await _versions(api, name)] == [v1["id"]]
    assert (await api.delete(f"{AGENTS}/{v2['id']}")).status_code == 404


async def test_unknown_provider_id_is_422_on_create_and_patch(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("orphan")
    response = await api.post(AGENTS, json={"name": name, "provider_id": 987654, "model": "fake-small"})
    assert response.status_code == 422
    assert "provider 987654" in response.json()["detail"]
    assert await _versions(api, name) == []

    agent = await make_agent(api, provider["id"])
    patched = await api.patch(f"{AGENTS}/{agent['id']}", json={"provider_id": 987654})
    assert patched.status_code == 422
    assert (await api.get(f"{AGENTS}/{agent['id']}")).json()["provider_id"] == provider["id"]


async def test_unknown_tool_name_is_422(api: httpx.AsyncClient, provider: dict[str, Any]) -> None:
    name = unique("tooled")
    response = await api.post(
        AGENTS,
        json={
            "name": name,
            "provider_id": provider["id"],
            "model": "fake-small",
            "tools": ["no_such_tool_xyz"],
        },
    )
    assert response.status_code == 422
    assert "no_such_tool_xyz" in response.json()["detail"]


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "Has Spaces"},
        {"name": ""},
        {"model": ""},
        {"temperature": 3},
        {"max_tokens": 0},
    ],
)
async def test_invalid_agent_fields_are_422(
    api: httpx.AsyncClient, provider: dict[str, Any], bad: dict[str, Any]
) -> None:
    body = {"name": unique("bad"), "provider_id": provider["id"], "model": "fake-small", **bad}
    response = await api.post(AGENTS, json=body)
    assert response.status_code == 422
    assert "detail" in response.json()


async def test_concurrent_activations_leave_exactly_one_active_version(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("race")
    versions = [await make_agent(api, provider["id"], name=name) for _ in range(6)]
    # Each round deadlocked now and then while every activation locked the versions in its own
    # order; a few rounds make that show.
    for _ in range(10):
        responses = await asyncio.gather(*(api.post(f"{AGENTS}/{v['id']}/activate") for v in versions))
        assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
        assert any(r.status_code == 200 for r in responses)
        active = await _versions(api, name, active="true")
        assert len(active) == 1


async def test_concurrent_creates_get_distinct_versions_or_a_409(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    name = unique("race-create")
    body = {"name": name, "provider_id": provider["id"], "model": "fake-small"}
    responses = await asyncio.gather(*(api.post(AGENTS, json=body) for _ in range(4)))
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    created = [r.json() for r in responses if r.status_code == 201]
    versions = [a["version"] for a in await _versions(api, name)]
    assert sorted(a["version"] for a in created) == versions == list(range(1, len(versions) + 1))
    assert len(await _versions(api, name, active="true")) == 1
