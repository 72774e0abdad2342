"""Bearer-token auth on every route, generated from the OpenAPI so new routes are covered."""

import re

import httpx
import pytest

from api.main import create_app
from core.settings import Settings

PUBLIC = re.compile(
    r"^(/health(/.*)?|/api/v1/config|/api/v1/codec/log(in|out)|/api/v1/webhook/telegram|/webhook/telegram)$"
)
METHODS = {"get", "post", "put", "patch", "delete"}


def _protected_routes(settings: Settings) -> list[tuple[str, str]]:
    schema = create_app(settings).openapi()
    routes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in schema["paths"].items()
        if not PUBLIC.match(path)
        for method in operations
        if method in METHODS
    ]
    return sorted(routes)


def test_openapi_lists_the_known_protected_routes(settings: Settings) -> None:
    routes = _protected_routes(settings)
    # Guards the generator itself: if it found nothing, the auth tests below would pass vacuously.
    for expected in [
        ("GET", "/api/v1/providers"),
        ("POST", "/api/v1/providers/1/validate"),
        ("DELETE", "/api/v1/agents/1"),
        ("POST", "/api/v1/agents/1/test"),
        ("GET", "/api/v1/agents/resolve/1"),
    ]:
        assert expected in routes


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "wrong", "basic", "empty"],
)
async def test_every_protected_route_answers_401_without_a_valid_token(
    api: httpx.AsyncClient, settings: Settings, headers: dict[str, str]
) -> None:
    anonymous = httpx.AsyncClient(transport=api._transport, base_url="http://api", headers=headers)
    failures = []
    for method, path in _protected_routes(settings):
        response = await anonymous.request(method, path, json={})
        if response.status_code != 401 or "detail" not in response.json():
            failures.append((method, path, response.status_code))
    assert failures == []


async def test_public_routes_answer_without_a_token(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/health")).status_code == 200
    config = await anon.get("/api/v1/config")
    assert config.status_code == 200
    assert "api_token" not in config.text.lower()


async def test_the_right_token_is_let_in(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/providers")).status_code == 200
