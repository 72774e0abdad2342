"""Provider limits through HTTP: set on create, shown in every answer, changed and removed by
PATCH, and refused with a 422 naming the field when they are not positive whole numbers (the
provider is left as it was)."""

from typing import Any

import httpx
import pytest

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_provider

PROVIDERS = "/api/v1/providers"
LIMITS = ("max_concurrency", "requests_per_minute", "tokens_per_minute")


async def test_limits_are_set_on_create_shown_everywhere_and_patched_or_cleared(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(
        api, fake_llm, max_concurrency=4, requests_per_minute=60, tokens_per_minute=90_000
    )
    assert [provider[k] for k in LIMITS] == [4, 60, 90_000]
    pid = provider["id"]
    assert (await api.get(f"{PROVIDERS}/{pid}")).json() == provider
    listed = (await api.get(PROVIDERS, params={"limit": 500})).json()
    assert provider in listed

    changed = await api.patch(f"{PROVIDERS}/{pid}", json={"max_concurrency": 2, "tokens_per_minute": None})
    assert changed.status_code == 200, changed.text
    assert [changed.json()[k] for k in LIMITS] == [2, 60, None]
    # A patch that leaves a limit out leaves it alone.
    renamed = await api.patch(f"{PROVIDERS}/{pid}", json={"name": unique("renamed")})
    assert [renamed.json()[k] for k in LIMITS] == [2, 60, None]

    unlimited = await make_provider(api, fake_llm)
    assert [unlimited[k] for k in LIMITS] == [None, None, None]


BAD_LIMITS: list[tuple[str, Any, str]] = [
    ("max_concurrency", 0, "greater than 0"),
    ("max_concurrency", -3, "greater than 0"),
    ("max_concurrency", 10_001, "less than or equal to 10000"),
    ("requests_per_minute", 1.5, "valid integer"),
    ("requests_per_minute", "60", "valid integer"),
    ("requests_per_minute", True, "valid integer"),
    ("tokens_per_minute", 2**31, "less than or equal to 2000000000"),
    ("tokens_per_minute", [1000], "valid integer"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_LIMITS)
async def test_a_bad_limit_is_a_422_naming_it_on_create(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, field: str, value: Any, message: str
) -> None:
    name = unique("bad-limit")
    body = {"name": name, "kind": "openai_compatible", "base_url": fake_llm.base_url, field: value}
    response = await api.post(PROVIDERS, json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["loc"][-1] == field and message in p["msg"] for p in problems), problems
    listed = (await api.get(PROVIDERS, params={"limit": 500})).json()
    assert name not in {p["name"] for p in listed}


@pytest.mark.parametrize(("field", "value", "message"), BAD_LIMITS)
async def test_a_bad_limit_is_a_422_naming_it_on_patch_and_changes_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, field: str, value: Any, message: str
) -> None:
    provider = await make_provider(api, fake_llm, max_concurrency=3, requests_per_minute=30)
    response = await api.patch(f"{PROVIDERS}/{provider['id']}", json={field: value, "is_active": False})
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["loc"][-1] == field and message in p["msg"] for p in problems), problems
    assert (await api.get(f"{PROVIDERS}/{provider['id']}")).json() == provider
