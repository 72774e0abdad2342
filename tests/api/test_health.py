"""Liveness and readiness: 200 when every part is up, 503 naming the part that is not."""

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from temporalio.client import Client

from api.main import create_app
from core.settings import Settings
from tests.conftest import api_client, migrated_database
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_provider


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


@pytest.fixture
def own_database(settings: Settings) -> Iterator[Settings]:
    """The session's settings on a database of their own, so no other test's providers or
    schedules show up in readiness."""
    with migrated_database("goalflow_health") as url:
        yield settings.model_copy(update={"database_url": url, "llm_provider": "none"})


def _fresh_api(settings: Settings) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return api_client(settings)


async def test_ready_is_200_with_every_part_ok(own_database: Settings, worker: None) -> None:
    async with _fresh_api(own_database) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert body["degraded"] == []
    assert set(body["checks"]) == {
        "database",
        "temporal",
        "worker",
        "providers",
        "mcp_servers",
        "schedules",
        "local_model",
        "held_runs",
    }
    assert all(part["ok"] is True for part in body["checks"].values()), body
    assert body["checks"]["worker"]["pollers"] >= 1
    assert body["checks"]["schedules"]["expected"] == 0


async def test_ready_is_degraded_while_the_local_model_is_not_serving(
    own_database: Settings, worker: None
) -> None:
    port = _closed_port()
    local = own_database.model_copy(update={"llm_provider": "local", "local_model_port": port})
    async with _fresh_api(local) as http:
        response = await http.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["failing"], body["degraded"]) == ("degraded", [], ["local_model"])
    part = body["checks"]["local_model"]
    assert part["serving"] is False
    assert str(port) in part["base_url"]


async def test_ready_reports_a_provider_whose_last_validation_failed(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    """On the session's database (the worker's validation activity writes there)."""
    good = await make_provider(api, fake_llm)
    bad = await make_provider(api, fake_llm, api_key="sk-revoked")
    assert (await api.post(f"/api/v1/providers/{good['id']}/validate")).json()["ok"] is True
    assert (await api.post(f"/api/v1/providers/{bad['id']}/validate")).json()["ok"] is False
    response = await anon.get("/health/ready")
    # Informational: the API keeps serving (200), but says which provider is broken and why.
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert body["failing"] == []
    assert "providers" in body["degraded"]
    providers = body["checks"]["providers"]
    assert providers["ok"] is False
    assert bad["name"] in providers["error"] and good["name"] not in providers["error"]
    by_name = {p["name"]: p for p in providers["providers"]}
    assert by_name[bad["name"]]["connection_status"] == "error"
    assert "401" in by_name[bad["name"]]["last_error"]
    assert by_name[bad["name"]]["last_validated_at"] is not None
    assert by_name[good["name"]]["connection_status"] == "ok"
    assert "sk-revoked" not in response.text


async def test_ready_names_a_schedule_missing_from_temporal(
    own_database: Settings, worker: None, client: Client
) -> None:
    async with _fresh_api(own_database) as http:
        created = await http.post(
            "/api/v1/goals",
            json={"title": "nightly", "objective": "say hi", "schedule": "0 3 * * *", "timezone": "UTC"},
        )
        assert created.status_code == 201, created.text
        goal = created.json()
        body = (await http.get("/health/ready")).json()
        assert body["checks"]["schedules"] == {"ok": True, "expected": 1}, body
        # The schedule disappears behind goalflow's back: its nightly runs would silently stop.
        await client.get_schedule_handle(goal["schedule_id"]).delete()
        response = await http.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert body["degraded"] == ["schedules"]
    assert body["checks"]["schedules"]["error"] == f"{goal['schedule_id']} is missing"


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
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"]
