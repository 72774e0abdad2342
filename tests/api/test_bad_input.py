"""Bad input is a precise 4xx with `{"detail": ...}`, never a 500, and creates nothing.

The ASGI transport re-raises unhandled app exceptions, so a 500 here fails the test loudly.
"""

from typing import Any

import httpx
import pytest

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

AGENTS = "/api/v1/agents"
PROVIDERS = "/api/v1/providers"
INT32_OVER = 2**31
JSON = {"content-type": "application/json"}


@pytest.fixture
async def provider(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> dict[str, Any]:
    return await make_provider(api, fake_llm)


async def _snapshot(api: httpx.AsyncClient) -> tuple[list[int], list[int]]:
    agents = (await api.get(AGENTS, params={"limit": 500})).json()
    providers = (await api.get(PROVIDERS, params={"limit": 500})).json()
    return sorted(a["id"] for a in agents), sorted(p["id"] for p in providers)


def _assert_4xx(response: httpx.Response, status: int = 422) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"detail"}, body
    assert body["detail"]


RAW_BODIES = {
    "malformed": b'{"name": "x", ',
    "array": b'[{"name": "x"}]',
    "string": b'"just a string"',
    "number": b"42",
    "null": b"null",
    "empty": b"",
    "bad-utf8": b"\xff\xfe{}",
    "nan-literal": b'{"name": "a", "provider_id": 1, "model": "m", "temperature": NaN}',
}


@pytest.mark.parametrize("path", [AGENTS, PROVIDERS])
@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
async def test_unparseable_or_non_object_json_is_422_and_creates_nothing(
    api: httpx.AsyncClient, path: str, raw: bytes
) -> None:
    before = await _snapshot(api)
    _assert_4xx(await api.post(path, content=raw, headers=JSON))
    assert await _snapshot(api) == before


def _agent_cases(provider_id: int) -> dict[str, dict[str, Any]]:
    base = {"name": unique("bad"), "provider_id": provider_id, "model": "fake-small"}
    return {
        "name-int": {**base, "name": 12},
        "name-upper": {**base, "name": "UPPER"},
        "name-too-long": {**base, "name": "a" * 64},
        "provider-string": {**base, "provider_id": "one"},
        "provider-beyond-int32": {**base, "provider_id": INT32_OVER},
        "provider-huge": {**base, "provider_id": 10**40},
        "provider-negative": {**base, "provider_id": -1},
        "model-too-long": {**base, "model": "m" * 201},
        "prompt-too-long": {**base, "system_prompt": "p" * 50_001},
        "temperature-string": {**base, "temperature": "hot"},
        "temperature-high": {**base, "temperature": 2.5},
        "max-tokens-float": {**base, "max_tokens": 1.5},
        "max-tokens-huge": {**base, "max_tokens": 10**12},
        "tools-not-list": {**base, "tools": "http_request"},
        "tools-ints": {**base, "tools": [1, 2]},
        "schema-list": {**base, "output_schema": [1]},
        "activate-string": {**base, "activate": "sometimes"},
        "nul-in-model": {**base, "model": "fake-\u0000"},
        "nul-in-prompt": {**base, "system_prompt": "a\u0000b"},
        "missing-model": {"name": base["name"], "provider_id": provider_id},
    }


async def test_wrong_types_oversize_and_out_of_range_agent_fields_are_422(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    before = await _snapshot(api)
    failures = []
    for label, body in _agent_cases(provider["id"]).items():
        response = await api.post(AGENTS, json=body)
        if response.status_code != 422 or "detail" not in response.json():
            failures.append((label, response.status_code, response.text[:200]))
    assert failures == []
    assert await _snapshot(api) == before


PROVIDER_CASES: dict[str, dict[str, Any]] = {
    "name-list": {"name": ["a"], "kind": "openai"},
    "name-too-long": {"name": "n" * 101, "kind": "openai"},
    "name-blank": {"name": "   ", "kind": "openai"},
    "kind-unknown": {"name": "k", "kind": "anthropic"},
    "kind-missing": {"name": "k"},
    "url-too-long": {"name": "u", "kind": "openai", "base_url": "http://x.example/" + "a" * 500},
    "url-int": {"name": "u", "kind": "openai", "base_url": 5},
    "url-javascript": {"name": "u", "kind": "openai_compatible", "base_url": "javascript:alert(1)"},
    "key-too-long": {"name": "k", "kind": "openai", "api_key": "k" * 1001},
    "key-object": {"name": "k", "kind": "openai", "api_key": {"v": 1}},
    "active-string": {"name": "a", "kind": "openai", "is_active": "maybe"},
    "nul-in-name": {"name": "a\u0000b", "kind": "openai"},
    "nul-in-key": {"name": "nk", "kind": "openai", "api_key": "sk-\u0000"},
}


@pytest.mark.parametrize("body", PROVIDER_CASES.values(), ids=PROVIDER_CASES.keys())
async def test_bad_provider_fields_are_422_and_create_nothing(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    before = await _snapshot(api)
    name = body.get("name")
    if isinstance(name, str) and name.isalpha() and len(name) < 10:
        body = {**body, "name": unique(name)}  # a valid name, so only the named fault is wrong
    _assert_4xx(await api.post(PROVIDERS, json=body))
    assert await _snapshot(api) == before


@pytest.mark.parametrize(
    "path",
    [
        f"{AGENTS}/{INT32_OVER}",
        f"{AGENTS}/0",
        f"{AGENTS}/-5",
        f"{AGENTS}/abc",
        f"{AGENTS}/99999999999999999999999",
        f"{PROVIDERS}/{INT32_OVER}",
        f"{PROVIDERS}/1.5",
        f"{AGENTS}/resolve/NOT_A_NAME",
    ],
)
async def test_ids_beyond_int32_or_not_ids_are_422(api: httpx.AsyncClient, path: str) -> None:
    _assert_4xx(await api.get(path))


@pytest.mark.parametrize(
    "params",
    [
        {"limit": -1},
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": 10**12},
        {"active": "maybe"},
        {"name": "x" * 64},
    ],
)
async def test_bad_pagination_and_filters_are_422(api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    for path in (AGENTS, PROVIDERS):
        if "active" in params or "name" in params:
            path = AGENTS
        _assert_4xx(await api.get(path, params=params))


async def test_bad_patch_bodies_are_422_and_change_nothing(
    api: httpx.AsyncClient, provider: dict[str, Any]
) -> None:
    agent = await make_agent(api, provider["id"])
    bodies: list[Any] = [
        [],
        {"temperature": "warm"},
        {"provider_id": INT32_OVER},
        {"model": ""},
        {"max_tokens": -3},
        {"system_prompt": "x\u0000"},
    ]
    for body in bodies:
        _assert_4xx(await api.patch(f"{AGENTS}/{agent['id']}", json=body))
    assert (await api.get(f"{AGENTS}/{agent['id']}")).json() == agent
    provider_bodies: list[dict[str, Any]] = [
        {"name": ""},
        {"kind": "gpt"},
        {"base_url": "x"},
        {"is_active": [1]},
    ]
    for body in provider_bodies:
        _assert_4xx(await api.patch(f"{PROVIDERS}/{provider['id']}", json=body))
    assert (await api.get(f"{PROVIDERS}/{provider['id']}")).json() == provider


async def test_bad_agent_test_prompts_are_422_without_starting_a_workflow(
    api: httpx.AsyncClient, provider: dict[str, Any], fake_llm: FakeOpenAI
) -> None:
    agent = await make_agent(api, provider["id"])
    prompts: list[Any] = [{}, {"prompt": ""}, {"prompt": 5}, {"prompt": "p" * 100_001}, []]
    for body in prompts:
        _assert_4xx(await api.post(f"{AGENTS}/{agent['id']}/test", json=body))
    assert fake_llm.calls(agent["model"]) == []


async def test_unknown_routes_and_methods_are_404_and_405(api: httpx.AsyncClient) -> None:
    _assert_4xx(await api.get("/api/v1/nothing-here"), 404)
    _assert_4xx(await api.put(AGENTS, json={}), 405)
