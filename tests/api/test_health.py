"""Liveness and readiness: 200 when every part is up, 503 naming the part that is not."""

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from api.main import create_app
from core.settings import Settings


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def _app_with(settings: Settings, **update: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An extra app whose settings differ from the session's in `update`."""
    app = create_app(settings.model_copy(update=update))
    async with (
        LifespanManager(app, startup_timeout=30),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http,
    ):
        yield http


async def test_liveness_is_200_without_a_token(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_is_200_with_database_temporal_and_worker_ok(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    for part in ("database", "temporal", "worker", "providers"):
        assert body["checks"][part]["ok"] is True, body
    assert body["checks"]["worker"]["pollers"] >= 1


async def test_ready_is_503_naming_worker_when_no_one_polls_the_task_queue(
    settings: Settings, worker: None
) -> None:
    async with _app_with(settings, task_queue=f"unpolled-{uuid.uuid4().hex[:8]}") as http:
        response = await http.get("/health/ready")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["failing"] == ["worker"]
    assert "unpolled-" in body["checks"]["worker"]["error"]
    assert body["checks"]["temporal"]["ok"] is True
    assert body["checks"]["database"]["ok"] is True


async def test_ready_is_503_naming_temporal_when_it_is_unreachable(settings: Settings, worker: None) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    async with _app_with(settings, temporal_address=address) as http:
        response = await http.get("/health/ready")
        assert (await http.get("/health")).status_code == 200
    assert response.status_code == 503, response.text
    body = response.json()
    assert "temporal" in body["failing"]
    assert body["checks"]["temporal"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    # Without Temporal no worker can be seen either; the database is still reported healthy.
    assert set(body["failing"]) == {"temporal", "worker"}


async def test_ready_is_503_naming_database_when_it_is_unreachable(settings: Settings, worker: None) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nothing"
    async with _app_with(settings, database_url=url) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 503, response.text
    body = response.json()
    assert "database" in body["failing"]
    assert body["checks"]["temporal"]["ok"] is True
    assert body["checks"]["worker"]["ok"] is True
    assert "postgres@" not in response.text or "password" not in response.text
