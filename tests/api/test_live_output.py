"""An agent node's text is published as it is written (activities/live_output.py): ordered
`node.output_delta` events, well before the node ends, whose text put together is the node's
output; the workflow history is the same length as for an answer that came at once; an SSE
client of the execution's events gets the text as `node_output_delta` before `node_succeeded`; an
agent with tools streams the model requests of its loop in the workflow too."""

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
from sqlmodel import col, select
from temporalio.client import Client

from contracts.dag import DagEvent, DagSpec, ExecutionStatus, NodeSpec
from core.db import session_scope
from core.events import NODE_OUTPUT_DELTA, RUN_PROGRESS, publish
from core.models import LiveEvent
from core.settings import Settings
from services.dag_event_stream import Gap, StreamItem
from services.live_output import merged
from services.realtime import EventHub
from tests.api.dag_helpers import make_dag, start, wait_closed
from tests.api.sse import read_events, served_api
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.stack import ROOT
from tests.workflows.replay import scheduled_activities
from tests.workflows.test_agent_node_speed import start as start_dag
from worker import build_worker

WORDS = 30
PACE_S = 0.05


def says(text: str) -> Any:
    def handle(_body: dict[str, Any]) -> dict[str, Any]:
        return {"role": "assistant", "content": text}

    return handle


async def deltas_of(settings: Settings, execution_id: str) -> list[tuple[float, dict[str, Any]]]:
    async with session_scope(settings) as session:
        rows = (
            await session.exec(
                select(LiveEvent).where(col(LiveEvent.type) == NODE_OUTPUT_DELTA).order_by(col(LiveEvent.id))
            )
        ).all()
    return [
        (row.created_at.timestamp(), row.data) for row in rows if row.data["execution_id"] == execution_id
    ]


async def test_an_agent_nodes_text_is_published_as_it_is_written(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    histories = []
    for pace in (PACE_S, 0.0):
        agent = await make_agent(api, provider["id"])
        text = " ".join(f"word{i}" for i in range(WORDS))
        fake_llm.handlers[agent["model"]] = says(text)
        fake_llm.paces[agent["model"]] = pace
        dag = await make_dag(api, {"nodes": [{"id": "say", "agent": agent["name"], "prompt": "Talk."}]})
        execution_id = await start(api, dag["id"])
        body = await wait_closed(api, execution_id)
        finished = time.time()
        assert body["status"] == "succeeded", body
        assert body["nodes"][0]["output"] == text
        histories.append(await client.get_workflow_handle(execution_id).fetch_history())
        if not pace:
            break
        deltas = await deltas_of(settings, execution_id)
        assert len(deltas) >= 5, deltas  # coalesced (~every 0.1 s), not one per word
        data = [d for _, d in deltas]
        assert {(d["node_id"], d["attempt"]) for d in data} == {("say", 1)}
        assert [d["offset"] for d in data] == [
            sum(len(x["text"]) for x in data[:i]) for i in range(len(data))
        ]
        assert "".join(d["text"] for d in data) == text
        assert deltas[0][0] < finished - 0.8  # the first text well before the node ended
    streamed, at_once = histories
    assert len(streamed.events) == len(at_once.events)  # no history event per delta


def calculates_then_says(text: str) -> Any:
    """A model that calls the calculator once, then answers `text`."""

    def handle(body: dict[str, Any]) -> dict[str, Any]:
        if not any(m["role"] == "tool" for m in body["messages"]):
            call = {
                "id": "call_0",
                "type": "function",
                "function": {"name": "calculator", "arguments": json.dumps({"expression": "6*7"})},
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        return {"role": "assistant", "content": text}

    return handle


async def test_an_agent_with_tools_streams_the_requests_of_its_loop(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=["calculator"])
    text = " ".join(f"word{i}" for i in range(WORDS))
    fake_llm.handlers[agent["model"]] = calculates_then_says(text)
    fake_llm.paces[agent["model"]] = PACE_S
    dag = await make_dag(api, {"nodes": [{"id": "think", "agent": agent["name"], "prompt": "Count."}]})
    execution_id = await start(api, dag["id"])
    body = await wait_closed(api, execution_id)
    finished = time.time()
    assert body["status"] == "succeeded", body
    assert body["nodes"][0]["output"] == text
    deltas = await deltas_of(settings, execution_id)
    data = [d for _, d in deltas]
    assert len(data) >= 5, data
    assert {(d["node_id"], d["attempt"]) for d in data} == {("think", 1)}
    assert "".join(d["text"] for d in data) == text  # the tool call's request wrote no text
    assert deltas[0][0] < finished - 0.8
    history = await client.get_workflow_handle(execution_id).fetch_history()
    kinds = [name for name, _ in scheduled_activities(history)]
    assert sum(kind.endswith("__model_request_stream") for kind in kinds) == 2, kinds
    assert len(fake_llm.calls(agent["model"])) == 2


async def test_a_worker_killed_mid_stream_shows_a_new_attempt_and_a_whole_second_answer(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    """kill -9 of the worker while the node writes: the text so far stays attempt 1's, the retried
    request writes the whole answer again as attempt 2 from offset 0, and that is the output."""
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    text = " ".join(f"word{i}" for i in range(WORDS))
    fake_llm.handlers[agent["model"]] = says(text)
    fake_llm.paces[agent["model"]] = 0.1
    queue = f"live-kill-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TASK_QUEUE": queue, "WORKER_METRICS_ADDRESS": "", "PYTHONPATH": str(ROOT)}
    worker_a = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    seen: list[dict[str, Any]] = []
    try:
        spec = DagSpec(
            name="kill-mid-stream", nodes=[NodeSpec(id="say", agent=agent["name"], prompt="Talk.")]
        )
        handle = await start_dag(client, queue, spec)
        deadline = time.monotonic() + 60
        while len(seen) < 3:  # worker A has written some of the answer
            assert time.monotonic() < deadline, "worker A wrote nothing"
            await asyncio.sleep(0.1)
            seen = [d for _, d in await deltas_of(settings, handle.id)]
        worker_a.send_signal(signal.SIGKILL)
        await worker_a.wait()
        async with build_worker(client, settings, task_queue=queue):
            result = await asyncio.wait_for(handle.result(), 120)
    finally:
        if worker_a.returncode is None:
            worker_a.kill()
            await worker_a.wait()
    assert result.status == ExecutionStatus.succeeded
    data = [d for _, d in await deltas_of(settings, handle.id)]
    first = "".join(d["text"] for d in data if d["attempt"] == 1)
    second = [d for d in data if d["attempt"] == 2]
    assert first and text.startswith(first) and len(first) < len(text)  # cut by the kill
    assert second[0]["offset"] == 0  # the new attempt starts the text again
    assert "".join(d["text"] for d in second) == text  # a whole second answer, not glued to the first
    assert [d["attempt"] for d in data] == sorted(d["attempt"] for d in data)


@pytest_asyncio.fixture(scope="module")
async def served(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with served_api(settings) as http:
        yield http


async def test_an_sse_client_gets_the_text_before_the_node_succeeds(
    api: httpx.AsyncClient, served: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    text = " ".join(f"w{i}" for i in range(WORDS))
    fake_llm.handlers[agent["model"]] = says(text)
    fake_llm.paces[agent["model"]] = PACE_S
    fake_llm.slow(agent["model"], 1.0)  # the SSE client is connected before the first word
    dag = await make_dag(api, {"nodes": [{"id": "say", "agent": agent["name"], "prompt": "Talk."}]})
    execution_id = await start(api, dag["id"])
    events = await read_events(served, f"/api/v1/dag-executions/{execution_id}/events")
    kinds = [e["event"] for e in events]
    deltas = [e["data"] for e in events if e["event"] == "node_output_delta"]
    assert len(deltas) >= 5 and all(e["id"] is None for e in events if e["event"] == "node_output_delta")
    assert kinds.index("node_output_delta") < kinds.index("node_succeeded")
    assert max(i for i, k in enumerate(kinds) if k == "node_output_delta") < kinds.index("node_succeeded")
    assert [d["offset"] for d in deltas] == [
        sum(len(x["text"]) for x in deltas[:i]) for i in range(len(deltas))
    ]
    assert "".join(d["text"] for d in deltas) == text and {d["node_id"] for d in deltas} == {"say"}


async def test_a_client_that_connects_mid_answer_is_replayed_the_text_so_far(
    api: httpx.AsyncClient, served: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    text = " ".join(f"v{i}" for i in range(WORDS * 2))
    fake_llm.handlers[agent["model"]] = says(text)
    fake_llm.paces[agent["model"]] = PACE_S
    dag = await make_dag(api, {"nodes": [{"id": "say", "agent": agent["name"], "prompt": "Talk."}]})
    execution_id = await start(api, dag["id"])
    for _ in range(100):
        if len(await deltas_of(settings, execution_id)) >= 3:
            break
        await asyncio.sleep(0.05)
    # Many other live events since then (a busy system) must not crowd this execution's out.
    async with session_scope(settings) as session:
        for i in range(1200):
            await publish(session, RUN_PROGRESS, {"stage": "analysing", "n": i})
        await session.commit()
    # Joining (or reconnecting with Last-Event-ID) while the node writes: its text so far, then
    # the rest as it comes, once each.
    events = await read_events(served, f"/api/v1/dag-executions/{execution_id}/events", last_event_id="0")
    kinds = [e["event"] for e in events]
    deltas = [e["data"] for e in events if e["event"] == "node_output_delta"]
    assert deltas[0]["offset"] == 0 and "".join(d["text"] for d in deltas) == text
    assert max(i for i, k in enumerate(kinds) if k == "node_output_delta") < kinds.index("node_succeeded")


async def test_a_nodes_text_comes_before_its_end_even_when_the_hub_has_not_delivered_it(
    settings: Settings,
) -> None:
    """Where the hub polls (SQLite, every half second) the last deltas can still be on their way
    when the node's end arrives: they are read from the table first. Rows written here without a
    NOTIFY are deltas the hub has not delivered."""
    execution_id = f"dag-live-{uuid.uuid4().hex[:8]}"
    hub = EventHub(settings)

    async def durable() -> AsyncIterator[StreamItem]:
        yield Gap(first=0, last=0)  # the stream's other items pass through as they are
        async with session_scope(settings) as session:
            for offset, text in ((0, "late "), (5, "text")):
                data = {
                    "execution_id": execution_id,
                    "node_id": "say",
                    "attempt": 1,
                    "offset": offset,
                    "text": text,
                }
                session.add(LiveEvent(type=NODE_OUTPUT_DELTA, data=data))
            await session.commit()
        yield 0, DagEvent(kind="node_succeeded", node_id="say", at=datetime.now(UTC))

    try:
        got = [item async for item in merged(durable(), hub, execution_id)]
    finally:
        await hub.close()
    assert got[0] == Gap(first=0, last=0)
    assert [getattr(i, "text", None) for i in got[1:3]] == ["late ", "text"]
    assert isinstance(got[3], tuple) and got[3][1].kind == "node_succeeded"
