"""Providers through HTTP: CRUD, write-only keys, kinds and URLs, conflicts, validation."""

from typing import Any

import httpx
import pytest

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

PROVIDERS = "/api/v1/providers"


def _assert_no_key(body: dict[str, Any], secret: str) -> None:
    assert "api_key" not in body
    assert "encrypted_api_key" not in body
    assert secret not in str(body)


async def test_create_get_list_answer_key_hint_never_the_key(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    secret = f"sk-live-{unique('k')}-WXYZ"
    created = await make_provider(api, fake_llm, api_key=secret)
    _assert_no_key(created, secret)
    assert created["has_api_key"] is True
    assert created["api_key_hint"] == "WXYZ"
    assert created["connection_status"] == "unknown"
    assert created["is_active"] is True

    fetched = (await api.get(f"{PROVIDERS}/{created['id']}")).json()
    assert fetched == created
    listed = (await api.get(PROVIDERS, params={"limit": 500})).json()
    assert created in listed
    for row in listed:
        _assert_no_key(row, secret)


async def test_provider_without_key_has_no_hint(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> None:
    response = await api.post(PROVIDERS, json={"name": unique("ollama"), "kind": "ollama"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["has_api_key"], body["api_key_hint"], body["base_url"]) == (False, None, None)


@pytest.mark.parametrize(
    ("kind", "base_url"),
    [
        ("openai", None),
        ("openrouter", None),
        ("ollama", "http://127.0.0.1:11434/v1"),
        ("openai_compatible", "https://llm.example.com/v1"),
    ],
)
async def test_every_kind_is_accepted(api: httpx.AsyncClient, kind: str, base_url: str | None) -> None:
    response = await api.post(
        PROVIDERS,
        json={"name": unique(kind), "kind": kind, "base_url": base_url, "api_key": "sk-abcd"},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["kind"], response.json()["base_url"]) == (kind, base_url)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"kind": "openai_compatible"}, "base_url is required"),
        ({"kind": "openai_compatible", "base_url": ""}, "base_url"),
        ({"kind": "openai", "base_url": "not a url"}, "URL"),
        ({"kind": "openai_compatible", "base_url": "ftp://x.example/v1"}, "URL scheme"),
        ({"kind": "anthropic"}, "openai_compatible"),
        ({"kind": "openai", "name": ""}, "name"),
        ({"kind": "openai", "name": "x" * 101}, "name"),
        ({"kind": "openai", "api_key": "k" * 1001}, "api_key"),
    ],
)
async def test_bad_kind_url_or_field_is_422(
    api: httpx.AsyncClient, body: dict[str, Any], fragment: str
) -> None:
    payload = {"name": unique("bad"), **body}
    response = await api.post(PROVIDERS, json=payload)
    assert response.status_code == 422, response.text
    assert fragment in str(response.json()["detail"])


async def test_patch_changes_fields_rotates_key_and_removes_it(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    pid = provider["id"]
    new_name = unique("renamed")
    response = await api.patch(f"{PROVIDERS}/{pid}", json={"name": new_name, "is_active": False})
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["is_active"]) == (new_name, False)
    assert response.json()["api_key_hint"] == provider["api_key_hint"]

    new_secret = f"sk-new-{unique('k')}-9876"
    response = await api.patch(f"{PROVIDERS}/{pid}", json={"api_key": new_secret})
    assert response.status_code == 200
    _assert_no_key(response.json(), new_secret)
    assert response.json()["api_key_hint"] == "9876"

    response = await api.patch(f"{PROVIDERS}/{pid}", json={"api_key": None})
    assert (response.json()["has_api_key"], response.json()["api_key_hint"]) == (False, None)

    bad_url = await api.patch(f"{PROVIDERS}/{pid}", json={"base_url": "nope"})
    assert bad_url.status_code == 422
    assert (await api.get(f"{PROVIDERS}/{pid}")).json()["base_url"] == fake_llm.base_url


async def test_patch_kind_to_openai_compatible_without_base_url_is_422(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post(PROVIDERS, json={"name": unique("oa"), "kind": "openai"})
    pid = created.json()["id"]
    response = await api.patch(f"{PROVIDERS}/{pid}", json={"kind": "openai_compatible"})
    assert response.status_code == 422
    assert "base_url" in response.json()["detail"]
    assert (await api.get(f"{PROVIDERS}/{pid}")).json()["kind"] == "openai"


async def test_duplicate_name_is_409_on_create_and_rename(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    first = await make_provider(api, fake_llm)
    second = await make_provider(api, fake_llm)
    dup = await api.post(PROVIDERS, json={"name": first["name"], "kind": "openai"})
    assert dup.status_code == 409
    assert first["name"] in dup.json()["detail"]
    rename = await api.patch(f"{PROVIDERS}/{second['id']}", json={"name": first["name"]})
    assert rename.status_code == 409
    # Renaming to its own name is not a conflict.
    same = await api.patch(f"{PROVIDERS}/{first['id']}", json={"name": first["name"]})
    assert same.status_code == 200


async def test_delete_unused_provider_and_refuse_one_used_by_an_agent(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    used = await make_provider(api, fake_llm)
    await make_agent(api, used["id"])
    refused = await api.delete(f"{PROVIDERS}/{used['id']}")
    assert refused.status_code == 409
    assert "used by 1 agent" in refused.json()["detail"]
    assert (await api.get(f"{PROVIDERS}/{used['id']}")).status_code == 200

    unused = await make_provider(api, fake_llm)
    assert (await api.delete(f"{PROVIDERS}/{unused['id']}")).status_code == 204
    assert (await api.get(f"{PROVIDERS}/{unused['id']}")).status_code == 404
    assert (await api.delete(f"{PROVIDERS}/{unused['id']}")).status_code == 404


async def test_list_paginates_in_creation_order(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> None:
    ids = [(await make_provider(api, fake_llm))["id"] for _ in range(3)]
    everything = [p["id"] for p in (await api.get(PROVIDERS, params={"limit": 500})).json()]
    start = everything.index(ids[0])
    page = await api.get(PROVIDERS, params={"limit": 2, "offset": start})
    assert [p["id"] for p in page.json()] == ids[:2]
    page = await api.get(PROVIDERS, params={"limit": 2, "offset": start + 2})
    assert page.json()[0]["id"] == ids[2]


async def test_validate_lists_models_and_records_ok(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> None:
    provider = await make_provider(api, fake_llm)
    before = len([r for r in fake_llm.requests if r["path"] == "/v1/models"])
    response = await api.post(f"{PROVIDERS}/{provider['id']}/validate")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True
    assert body["models"] == sorted(fake_llm.models)
    assert body["error"] is None
    assert body["provider"]["connection_status"] == "ok"
    assert body["provider"]["last_validated_at"] is not None
    stored = (await api.get(f"{PROVIDERS}/{provider['id']}")).json()
    assert (stored["connection_status"], stored["last_error"]) == ("ok", None)
    model_calls = [r for r in fake_llm.requests if r["path"] == "/v1/models"][before:]
    assert any(r["headers"].get("authorization") == f"Bearer {fake_llm.api_key}" for r in model_calls)


async def test_validate_with_wrong_key_answers_provider_401_and_records_error(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm, api_key="sk-wrong-key-0000")
    response = await api.post(f"{PROVIDERS}/{provider['id']}/validate")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["models"] == []
    assert "401" in body["error"]
    assert "Incorrect API key provided" in body["error"]
    assert body["provider"]["connection_status"] == "error"
    stored = (await api.get(f"{PROVIDERS}/{provider['id']}")).json()
    assert stored["connection_status"] == "error"
    assert "Incorrect API key provided" in stored["last_error"]

    # A new key resets the recorded status until the next validation.
    fixed = await api.patch(f"{PROVIDERS}/{provider['id']}", json={"api_key": fake_llm.api_key})
    assert (fixed.json()["connection_status"], fixed.json()["last_error"]) == ("unknown", None)
    again = await api.post(f"{PROVIDERS}/{provider['id']}/validate")
    assert again.json()["ok"] is True
    assert again.json()["provider"]["connection_status"] == "ok"


async def test_validate_unreachable_endpoint_records_error(api: httpx.AsyncClient) -> None:
    created = await api.post(
        PROVIDERS,
        json={
            "name": unique("down"),
            "kind": "openai_compatible",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": "sk-down",
        },
    )
    response = await api.post(f"{PROVIDERS}/{created.json()['id']}/validate")
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is False
    assert "Connection" in response.json()["error"]
    assert response.json()["provider"]["connection_status"] == "error"


async def test_validate_unknown_provider_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post(f"{PROVIDERS}/999999/validate")
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


@pytest.mark.parametrize("bad_key", ["sk-ключ", "sk with space", "sk-\x00nul", "sk-tab\t"])
async def test_a_key_that_cannot_be_sent_in_a_header_is_422_and_stores_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, bad_key: str
) -> None:
    name = unique("badkey")
    body = {"name": name, "kind": "openai_compatible", "base_url": fake_llm.base_url, "api_key": bad_key}
    response = await api.post("/api/v1/providers", json=body)
    assert response.status_code == 422, response.text
    detail = str(response.json()["detail"])
    # A NUL character is refused at the door (api/json_guard.py), naming the field, not the key.
    assert "HTTP header" in detail or ("'api_key'" in detail and "NUL" in detail), detail
    assert bad_key not in response.text
    listed = await api.get("/api/v1/providers", params={"limit": 500})
    assert name not in [p["name"] for p in listed.json()]
    provider = await make_provider(api, fake_llm)
    patched = await api.patch(f"/api/v1/providers/{provider['id']}", json={"api_key": bad_key})
    assert patched.status_code == 422
    assert (await api.get(f"/api/v1/providers/{provider['id']}")).json()["api_key_hint"] == provider[
        "api_key_hint"
    ]


async def test_a_stored_key_that_cannot_be_sent_is_a_clear_answer_not_a_502(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Any
) -> None:
    from core.crypto import encrypt
    from core.db import session_scope
    from core.models import Provider

    provider = await make_provider(api, fake_llm)
    async with session_scope(settings) as session:  # a key stored before keys were checked
        row = await session.get(Provider, provider["id"])
        assert row is not None
        row.encrypted_api_key = encrypt(settings, "sk-ключ")
        session.add(row)
        await session.commit()
    validated = await api.post(f"/api/v1/providers/{provider['id']}/validate")
    assert validated.status_code == 200, validated.text
    assert validated.json()["ok"] is False
    assert validated.json()["provider"]["connection_status"] == "error"
    assert "HTTP header" in validated.json()["provider"]["last_error"]
    agent = await make_agent(api, provider["id"])
    tested = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "hi"})
    assert tested.status_code == 422, tested.text
    assert "HTTP header" in tested.json()["detail"]
