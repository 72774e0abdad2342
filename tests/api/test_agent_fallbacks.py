"""Fallback models of an agent version through HTTP: stored with the version, checked at the door,
a change makes the next version, and an agent test answers which model answered."""

from typing import Any

import httpx
import pytest

from contracts.agents import MAX_FALLBACKS
from tests.conftest import unique
from tests.fakes.openai_server import Fail, FakeOpenAI
from tests.helpers import make_agent, make_provider

AGENTS = "/api/v1/agents"


@pytest.fixture
async def provider(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> dict[str, Any]:
    return await make_provider(api, fake_llm)


async def _versions(api: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    response = await api.get(AGENTS, params={"name": name})
    assert response.status_code == 200, response.text
    return response.json()


async def test_fallbacks_are_stored_with_the_version_in_order(
    api: httpx.AsyncClient, provider: dict[str, Any], fake_llm: FakeOpenAI
) -> None:
    other = await make_provider(api, fake_llm)
    fallbacks = [
        {"provider_id": other["id"], "model": "fake-large"},
        {"provider_id": provider["id"], "model": "fake-small"},
    ]
    agent = await make_agent(api, provider["id"], fallbacks=fallbacks)
    assert agent["fallbacks"] == fallbacks
    assert (await api.get(f"{AGENTS}/{agent['id']}")).json()["fallbacks"] == fallbacks
    assert (await make_agent(api, provider["id"]))["fallbacks"] == []


@pytest.mark.parametrize(
    ("fallbacks", "expected"),
    [
        ([{"provider_id": 2_000_000_000, "model": "m"}], "fallback 1: provider 2000000000 does not exist"),
        ([{"provider_id": "{provider}", "model": "{model}"}], "repeats the version's own model"),
        (
            [{"provider_id": "{provider}", "model": "a"}, {"provider_id": "{provider}", "model": "a"}],
            "repeats fallback 1",
        ),
        ([{"provider_id": "{provider}", "model": f"m{i}"} for i in range(MAX_FALLBACKS + 1)], "at most 5"),
        ([{"provider_id": "{provider}", "model": ""}], "at least 1 character"),
        ([{"provider_id": 0, "model": "m"}], "greater than or equal to 1"),
        ([{"model": "m"}], "Field required"),
    ],
    ids=[
        "unknown-provider",
        "same-as-primary",
        "duplicate",
        "too-many",
        "empty-model",
        "bad-id",
        "no-provider",
    ],
)
async def test_invalid_fallbacks_are_422_naming_the_problem_and_store_nothing(
    api: httpx.AsyncClient, provider: dict[str, Any], fallbacks: list[dict[str, Any]], expected: str
) -> None:
    name = unique("fallbacks")
    model = "fake-small"
    filled = [
        {
            key: (provider["id"] if value == "{provider}" else model if value == "{model}" else value)
            for key, value in fallback.items()
        }
        for fallback in fallbacks
    ]
    body = {"name": name, "provider_id": provider["id"], "model": model, "fallbacks": filled}
    response = await api.post(AGENTS, json=body)
    assert response.status_code == 422, response.text
    assert expected in str(response.json()["detail"])
    assert await _versions(api, name) == []

    agent = await make_agent(api, provider["id"], model=model)
    patched = await api.patch(f"{AGENTS}/{agent['id']}", json={"fallbacks": filled})
    assert patched.status_code == 422, patched.text
    assert expected in str(patched.json()["detail"])
    assert [a["version"] for a in await _versions(api, agent["name"])] == [1]


async def test_patching_fallbacks_makes_the_next_version(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    agent = await make_agent(api, provider["id"])
    fallbacks = [{"provider_id": provider["id"], "model": "fake-large"}]
    response = await api.patch(f"{AGENTS}/{agent['id']}", json={"fallbacks": fallbacks})
    assert response.status_code == 200, response.text
    v2 = response.json()
    assert (v2["version"], v2["is_active"], v2["fallbacks"]) == (2, True, fallbacks)
    assert v2["model"] == agent["model"]  # everything else carries over
    v1 = (await api.get(f"{AGENTS}/{agent['id']}")).json()
    assert (v1["fallbacks"], v1["is_active"]) == ([], False)
    # The same fallbacks again change nothing; clearing them is a change; null is refused.
    same = await api.patch(f"{AGENTS}/{v2['id']}", json={"fallbacks": fallbacks})
    assert same.json()["id"] == v2["id"]
    cleared = (await api.patch(f"{AGENTS}/{v2['id']}", json={"fallbacks": []})).json()
    assert (cleared["version"], cleared["fallbacks"]) == (3, [])
    nulled = await api.patch(f"{AGENTS}/{cleared['id']}", json={"fallbacks": None})
    assert nulled.status_code == 422
    assert "fallbacks cannot be null" in nulled.json()["detail"]
    # A new own model that one of the fallbacks already names is refused too.
    clash = await api.patch(f"{AGENTS}/{v2['id']}", json={"model": "fake-large"})
    assert clash.status_code == 422
    assert "repeats the version's own model" in clash.json()["detail"]
    assert [a["version"] for a in await _versions(api, agent["name"])] == [1, 2, 3]


async def test_agent_test_answers_which_model_answered_after_the_primarys_401(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    """Two providers: the primary's key is refused (401), the fallback on the other answers."""
    refused = await make_provider(api, fake_llm, api_key="sk-revoked-0000")
    working = await make_provider(api, fake_llm)
    backup = unique("fake-backup")
    agent = await make_agent(api, refused["id"], fallbacks=[{"provider_id": working["id"], "model": backup}])
    response = await api.post(f"{AGENTS}/{agent['id']}/test", json={"prompt": "ping"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == "echo: ping"
    assert body["answered_by"] == f"{working['id']}:{backup}"
    assert body["model"] == agent["model"]  # the version's own model, as before
    [failed] = body["fallback_from"]
    assert failed["model"] == f"{refused['id']}:{agent['model']}"
    assert failed["error"].startswith("ProviderAuthError: ") and "401" in failed["error"]
    assert "sk-revoked" not in response.text
    assert body["usage"]["requests"] == 1  # the refused request cost nothing
    assert (len(fake_llm.calls(agent["model"])), len(fake_llm.calls(backup))) == (1, 1)


async def test_agent_test_without_fallbacks_answers_its_own_model_or_fails_as_before(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    ok = (await api.post(f"{AGENTS}/{agent['id']}/test", json={"prompt": "ping"})).json()
    assert (ok["answered_by"], ok["fallback_from"]) == (f"{provider['id']}:{agent['model']}", [])
    fake_llm.script(agent["model"], Fail(401, "Incorrect API key provided"))
    failed = await api.post(f"{AGENTS}/{agent['id']}/test", json={"prompt": "ping"})
    assert failed.status_code == 502, failed.text
    assert failed.json()["error"] == "ProviderAuthError"
    assert "fallback" not in failed.json()["detail"]
