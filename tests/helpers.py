"""Small builders the API tests share."""

from typing import Any

import httpx

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI


async def make_provider(
    api: httpx.AsyncClient, fake: FakeOpenAI, *, api_key: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A provider pointing at the fake server, holding its key unless told otherwise."""
    body = {
        "name": unique("prov"),
        "kind": "openai_compatible",
        "base_url": fake.base_url,
        "api_key": api_key if api_key is not None else fake.api_key,
        **extra,
    }
    response = await api.post("/api/v1/providers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def make_agent(api: httpx.AsyncClient, provider_id: int, **extra: Any) -> dict[str, Any]:
    """An agent version on a unique fake model, so scripts never collide between tests."""
    body = {
        "name": unique("agent"),
        "provider_id": provider_id,
        "model": unique("fake-model"),
        "system_prompt": "You are terse.",
        "temperature": 0.2,
        **extra,
    }
    response = await api.post("/api/v1/agents", json=body)
    assert response.status_code == 201, response.text
    return response.json()
