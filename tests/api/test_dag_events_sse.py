"""`GET /dag-executions/{id}/events`: SSE over the workflow's event stream, resumable by offset.

Served by a real uvicorn on loopback (tests/api/sse.py).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from core.settings import Settings
from core.temporal import connect
from services import dag_event_stream
from tests.api.dag_helpers import make_dag, start, wait_node
from tests.api.sse import read_events, served_api

GATED = {
    "nodes": [
        {"id": "a", "tool": "noop", "input": {"value": 1}},
        {"id": "gate", "tool": "noop", "input": {"value": 2}, "depends_on": ["a"], "requires_approval": True},
        {"id": "b", "tool": "noop", "input": {"value": 3}, "depends_on": ["gate"]},
        {"id": "c", "tool": "noop", "input": {"value": 4}, "depends_on": ["gate"]},
    ],
}


@pytest_asyncio.fixture(scope="module")
async def served(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with served_api(settings) as http:
        yield http


async def _events(
    http: httpx.AsyncClient, execution_id: str, *, last_event_id: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    path = f"/api/v1/dag-executions/{execution_id}/events"
    return await read_events(http, path, last_event_id=last_event_id, until=until)


async def test_reconnect_with_last_event_id_misses_nothing_and_stream_ends_at_completion(
    served: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    dag = await make_dag(api, GATED)
    execution_id = await start(api, dag["id"])

    first = await asyncio.wait_for(_events(served, execution_id, until="node_waiting_approval"), 30)
    assert first[0]["event"] == "execution_started"
    assert first[-1]["data"]["node_id"] == "gate"

    # While nobody listens, the execution moves on to its end.
    await wait_node(api, execution_id, "gate", "waiting_approval")
    approved = await api.post(f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"})
    assert approved.status_code == 200, approved.text

    rest = await asyncio.wait_for(_events(served, execution_id, last_event_id=first[-1]["id"]), 30)
    assert rest[-1] == {"id": None, "event": "end", "data": {"execution_id": execution_id}}
    rest = rest[:-1]

    events = first + rest
    offsets = [int(e["id"]) for e in events]
    assert offsets == list(range(len(events))), offsets
    assert [e["data"]["seq"] for e in events] == [o + 1 for o in offsets]
    assert events[-1]["event"] == "execution_succeeded"
    kinds = [(e["event"], e["data"]["node_id"]) for e in events]
    assert ("node_approved", "gate") in kinds
    assert {n for k, n in kinds if k == "node_succeeded"} == {"a", "gate", "b", "c"}
    assert all(e["event"] == e["data"]["kind"] for e in events)

    # A late subscriber from the start replays the same closed stream and ends too.
    replay = await asyncio.wait_for(_events(served, execution_id), 30)
    assert [e["id"] for e in replay[:-1]] == [e["id"] for e in events]
    # And a client may resume with `?after=` where it cannot set headers (EventSource polyfills).
    tail = await api.get(f"/api/v1/dag-executions/{execution_id}/events", params={"after": offsets[-2]})
    assert tail.status_code == 200
    assert f"id: {offsets[-1]}" in tail.text and f"id: {offsets[-2]}\n" not in tail.text


async def test_bad_last_event_id_is_422(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, {"nodes": [{"id": "x", "tool": "noop"}]})
    execution_id = await start(api, dag["id"])
    response = await api.get(
        f"/api/v1/dag-executions/{execution_id}/events", headers={"Last-Event-ID": "not-a-number"}
    )
    assert response.status_code == 422


async def _pending_polls(client: Client, execution_id: str) -> int:
    """Stream polls the workflow accepted and has not answered; each holds one of the server's
    in-flight update slots for the execution (10 by default)."""
    accepted = completed = 0
    async for event in client.get_workflow_handle(execution_id).fetch_history_events():
        accepted += event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        completed += event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
    return accepted - completed


async def test_subscribers_that_leave_while_caught_up_share_one_waiting_poll(
    served: httpx.AsyncClient, settings: Settings
) -> None:
    """A subscriber that is caught up waits in a poll (a workflow update) until the next event;
    one that leaves then cannot take its poll back. Polls at the same offset are one update, so
    subscribers coming and going on a waiting execution never reach the server's in-flight limit
    (past it, every new subscriber waited seconds for its first event)."""
    dag = await make_dag(served, GATED)
    execution_id = await start(served, dag["id"])
    await wait_node(served, execution_id, "gate", "waiting_approval")
    client = await connect(settings)  # the API's own client
    backlog = [offset async for offset, _ in _until_caught_up(client, settings, execution_id)]
    for _ in range(12):  # more than Temporal's 10 in-flight updates per workflow
        stream = dag_event_stream.events(client, settings, execution_id, after=max(backlog))
        follower = asyncio.create_task(_drain(stream))
        await asyncio.sleep(0.5)  # its poll now waits in the workflow
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    assert await _pending_polls(client, execution_id) == 1
    began = time.perf_counter()
    seen = await _events(served, execution_id, until="node_waiting_approval")
    assert seen and time.perf_counter() - began < 2
    approved = await served.post(f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"})
    assert approved.status_code == 200, approved.text
    await wait_node(served, execution_id, "c", "succeeded")
    assert await _pending_polls(client, execution_id) == 0  # the next event answered the shared poll


async def _until_caught_up(
    client: Client, settings: Settings, execution_id: str
) -> AsyncIterator[tuple[int, Any]]:
    """The events there are now (the stream's backlog), without waiting for the next."""
    stream = dag_event_stream.events(client, settings, execution_id, after=None)
    while True:
        try:
            item = await asyncio.wait_for(anext(stream), 1)
        except TimeoutError:
            return
        assert isinstance(item, tuple)
        yield item


async def _drain(stream: AsyncIterator[Any]) -> None:
    async for _ in stream:
        pass
