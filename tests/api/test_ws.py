"""`WS /api/v1/ws`: authenticated before it is accepted, and fed from every process.

Two real API processes (`python -m api.main`) on the session's PostgreSQL database: a change made
through one (or by the worker, in this process) reaches clients of the other through
LISTEN/NOTIFY."""

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from core.db import session_scope
from core.events import publish
from core.settings import Settings
from services.realtime import QUEUE_SIZE, EventHub
from tests.api.dag_helpers import make_dag, start
from tests.api.intake_helpers import FakeIntake, classification, setup_intake
from tests.conftest import ROOT
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.stack import free_port


@dataclass
class ApiProcess:
    url: str
    ws_url: str
    log: Path
    proc: asyncio.subprocess.Process


@pytest_asyncio.fixture(scope="module")
async def intake(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> FakeIntake:
    return await setup_intake(api, fake_llm)


async def _start_api(settings: Settings, log: Path) -> ApiProcess:
    port = free_port()
    env = {**os.environ, "API_PORT": str(port), "API_HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.main", cwd=ROOT, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            assert proc.returncode is None, f"the API exited; see {log}"
            try:
                if (await http.get(f"{url}/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    return ApiProcess(url=url, ws_url=f"ws://127.0.0.1:{port}/api/v1/ws", log=log, proc=proc)


@pytest_asyncio.fixture(scope="module")
async def apis(
    settings: Settings, worker: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ApiProcess, ApiProcess]]:
    """Two API processes on the same database and Temporal (the session's worker runs the work)."""
    logs = tmp_path_factory.mktemp("api-logs")
    first, second = await asyncio.gather(
        _start_api(settings, logs / "a.log"), _start_api(settings, logs / "b.log")
    )
    try:
        yield first, second
    finally:
        for api in (first, second):
            api.proc.terminate()
            await api.proc.wait()


def _token(settings: Settings) -> str:
    assert settings.api_token is not None
    return settings.api_token.get_secret_value()


def _bearer(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(settings)}"}


async def _frame(ws: ClientConnection, timeout_s: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        return dict(json.loads(await ws.recv()))


async def _subscribed(ws: ClientConnection) -> None:
    assert (await _frame(ws))["type"] == "subscribed"


async def _events_until(
    ws: ClientConnection, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout_s):
        while not done(seen):
            seen.append(dict(json.loads(await ws.recv())))
    return seen


def _has(event_type: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: any(e["type"] == event_type for e in seen)


@contextmanager
def _refused() -> Iterator[None]:
    with pytest.raises(InvalidStatus) as refused:
        yield
    assert refused.value.response.status_code == 403


async def test_ws_without_a_valid_token_is_refused(
    apis: tuple[ApiProcess, ApiProcess], settings: Settings
) -> None:
    api, _ = apis
    with _refused():
        await connect(api.ws_url)
    with _refused():
        await connect(api.ws_url, additional_headers={"Authorization": "Bearer not-the-token"})
    with _refused():
        await connect(api.ws_url, subprotocols=["bearer", "not-the-token"])  # type: ignore[list-item]
    with _refused():
        await connect(f"{api.ws_url}?token=not-the-token")
    with _refused():
        await connect(api.ws_url, subprotocols=["bearer"])  # type: ignore[list-item]


async def test_ws_takes_the_token_as_header_subprotocol_or_query_and_never_logs_it(
    apis: tuple[ApiProcess, ApiProcess], settings: Settings
) -> None:
    api, _ = apis
    token = _token(settings)
    async with connect(api.ws_url, additional_headers=_bearer(settings)) as ws:
        await _subscribed(ws)
    async with connect(api.ws_url, subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"
        await _subscribed(ws)
    async with connect(f"{api.ws_url}?token={token}") as ws:
        await _subscribed(ws)
    await asyncio.sleep(0.5)  # let the process flush its log lines
    log = await asyncio.to_thread(api.log.read_text)
    assert "WebSocket /api/v1/ws?token=<redacted>" in log
    assert token not in log


async def test_a_token_in_a_rest_or_sse_query_string_never_reaches_the_access_log(
    apis: tuple[ApiProcess, ApiProcess], settings: Settings
) -> None:
    api, _ = apis
    token = _token(settings)
    async with httpx.AsyncClient(base_url=api.url) as http:
        refused = await http.get(f"/api/v1/dags?token={token}")
        assert refused.status_code == 401  # a REST route takes the token only as a header
        await http.get(f"/api/v1/dag-executions/dag-0-none/events?limit=1&api_key={token}&x=1")
    await asyncio.sleep(0.5)  # let the process flush its log lines
    log = await asyncio.to_thread(api.log.read_text)
    assert "GET /api/v1/dags?token=<redacted> HTTP/1.1" in log
    assert "api_key=<redacted>&x=1" in log
    assert token not in log


async def test_events_reach_clients_of_both_api_processes(
    apis: tuple[ApiProcess, ApiProcess], settings: Settings, intake: FakeIntake
) -> None:
    first, second = apis
    text = f"Pick up the parcel tomorrow at 10am ({uuid.uuid4().hex[:6]})"
    intake.script(text, classification=classification("Pick up the parcel", "personal", is_task=True))
    async with (
        connect(first.ws_url, additional_headers=_bearer(settings)) as on_first,
        connect(second.ws_url, additional_headers=_bearer(settings)) as on_second,
    ):
        await _subscribed(on_first)
        await _subscribed(on_second)
        async with httpx.AsyncClient(base_url=first.url, headers=_bearer(settings), timeout=30) as http:
            response = await http.post("/api/v1/messages", json={"text": text})
            assert response.status_code == 201, response.text
            message_id = response.json()["id"]

            def mine(event: dict[str, Any]) -> bool:
                data = event["data"]
                return (
                    data.get("message", {}).get("id") == message_id
                    or data.get("message_id") == message_id
                    or data.get("task", {}).get("message_id") == message_id
                )

            def processed(seen: list[dict[str, Any]]) -> bool:
                return any(e["type"] == "task.created" and mine(e) for e in seen)

            for ws in (on_second, on_first):
                events = [e for e in await _events_until(ws, processed) if mine(e)]
                types = [e["type"] for e in events]
                assert types == ["message.created", "run.progress", "message.classified", "task.created"]
                assert events[1]["data"]["stage"] == "analysing"
                classified = events[2]["data"]["message"]
                assert classified["status"] == "classified"
                assert classified["classification"]["title"] == "Pick up the parcel"
                task = events[3]["data"]["task"]
                assert classified["task_id"] == task["id"]
                ids = [e["id"] for e in events]
                assert ids == sorted(ids)

            # A change through the first process reaches a client of the second.
            moved = await http.put(f"/api/v1/tasks/{task['id']}/status", json={"status": "in_progress"})
            assert moved.status_code == 200, moved.text
            updated = await _events_until(
                on_second, lambda seen: any(e["type"] == "task.updated" for e in seen)
            )
            assert updated[-1]["data"]["task"]["status"] == "in_progress"
            assert updated[-1]["data"]["previous_status"] == "todo"

    # A client that reconnects with the last id it saw is replayed what it missed, in order.
    async with connect(f"{second.ws_url}?after={ids[0] - 1}", additional_headers=_bearer(settings)) as ws:
        await _subscribed(ws)
        replayed = await _events_until(ws, _has("task.updated"))
        assert [e["id"] for e in replayed if mine(e)][:4] == ids
    with pytest.raises(InvalidStatus):  # a bad `after` is a policy violation, refused at the door
        await connect(f"{second.ws_url}?after=-1", additional_headers=_bearer(settings))


async def test_an_agent_nodes_text_reaches_clients_as_it_is_written(
    apis: tuple[ApiProcess, ApiProcess], settings: Settings, fake_llm: FakeOpenAI
) -> None:
    process, _ = apis
    async with (
        connect(process.ws_url, additional_headers=_bearer(settings)) as ws,
        httpx.AsyncClient(base_url=process.url, headers=_bearer(settings), timeout=30) as http,
    ):
        await _subscribed(ws)
        provider = await make_provider(http, fake_llm)
        agent = await make_agent(http, provider["id"])
        text = " ".join(f"w{i}" for i in range(40))
        fake_llm.handlers[agent["model"]] = lambda _body: {"role": "assistant", "content": text}
        fake_llm.paces[agent["model"]] = 0.05
        dag = await make_dag(http, {"nodes": [{"id": "say", "agent": agent["name"], "prompt": "Talk."}]})
        execution_id = await start(http, dag["id"])

        def whole(seen: list[dict[str, Any]]) -> bool:
            mine = [e["data"] for e in seen if e["type"] == "node.output_delta"]
            return "".join(d["text"] for d in mine if d["execution_id"] == execution_id) == text

        def begun(seen: list[dict[str, Any]]) -> bool:
            return any(
                e["type"] == "node.output_delta" and e["data"]["execution_id"] == execution_id for e in seen
            )

        first = await _events_until(ws, begun)
        node = (await http.get(f"/api/v1/dag-executions/{execution_id}")).json()["nodes"][0]
        assert node["status"] == "running", node  # the text flows while the node runs
        rest = await _events_until(ws, lambda seen: whole(first + seen))
    deltas = [
        e
        for e in first + rest
        if e["type"] == "node.output_delta" and e["data"]["execution_id"] == execution_id
    ]
    assert len(deltas) >= 5 and {e["data"]["node_id"] for e in deltas} == {"say"}


async def test_a_client_that_does_not_read_is_dropped_and_never_holds_back_the_others(
    settings: Settings,
) -> None:
    hub = EventHub(settings)
    try:
        async with hub.subscribe() as stuck, hub.subscribe() as reader:
            received = []
            for number in range(1, QUEUE_SIZE + 6):
                hub.publish_local({"id": 10**12 + number, "type": "run.progress", "at": "", "data": {}})
                received.append((await reader.next())["id"])
            assert len(received) == QUEUE_SIZE + 5 and not reader.overflowed
            assert stuck.overflowed and stuck.queue.qsize() == QUEUE_SIZE
            assert (await stuck.next())["id"] == 10**12 + 1  # what it got before is still delivered
    finally:
        await hub.close()


async def test_on_sqlite_the_hub_polls_the_table_and_replays_after_an_id(
    settings: Settings, tmp_path: Path
) -> None:
    """The embedded default (SQLite, worker and API in separate processes): events written by
    any process reach the hub by polling; `after` replays."""
    lite = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/events.db"})
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = lite.database_url
    config.attributes["configure_logger"] = False
    await asyncio.to_thread(command.upgrade, config, "head")
    hub = EventHub(lite)
    try:
        async with hub.subscribe() as subscriber:
            async with session_scope(lite) as session:
                for number in (1, 2):
                    await publish(session, "task.created", {"n": number})
                await session.commit()
            async with asyncio.timeout(30):
                got = [await subscriber.next(), await subscriber.next()]
        assert [e["data"]["n"] for e in got] == [1, 2]
        assert got[1]["id"] == got[0]["id"] + 1
        async with hub.subscribe(after=got[0]["id"]) as late, asyncio.timeout(30):
            assert (await late.next())["data"] == {"n": 2}
    finally:
        await hub.close()
