"""Cancelling a DAG execution reaches the work its nodes are doing: the running model request is
aborted (the fake LLM sees the client hang up) and a running `http_request` tool activity is
cancelled (the slow server sees the connection dropped), and the nodes show `cancelled`.

Cancellation reaches an activity only in the answer to a heartbeat, so these fail when the
activities do not heartbeat. The slow answers take far longer than the bounds waited here, so a
request that merely finished is never mistaken for an aborted one."""

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle

from contracts.dag import DagSpec, NodeSpec, NodeStatus, RunDagInput
from core.settings import Settings, get_settings
from tests.activities.slow_http import Hits, serve
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from workflows.dag import DagWorkflow

SLOW_S = 300
"""How long the slow answers would take if nobody cancelled them."""
BOUND_S = 120
"""Generous bound on waiting for a state the test expects (a heartbeat interval or two)."""


async def eventually(check: Callable[[], bool], what: str) -> float:
    """Seconds until `check()` holds; fails after BOUND_S."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > BOUND_S:
            pytest.fail(f"not within {BOUND_S}s: {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def start_dag(
    client: Client, settings: Settings, node: NodeSpec
) -> WorkflowHandle[DagWorkflow, object]:
    return await client.start_workflow(
        DagWorkflow.run,
        RunDagInput(spec=DagSpec(name="cancel-me", nodes=[node])),
        id=f"dag-cancel-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )


async def node_status(handle: WorkflowHandle[DagWorkflow, object], node_id: str) -> NodeStatus:
    status = await handle.query(DagWorkflow.status)
    return {n.id: n.status for n in status.nodes}[node_id]


@pytest.fixture
def hits(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hits]:
    monkeypatch.setattr(get_settings(), "http_allowlist", ["127.0.0.1"])
    with serve() as server:
        yield server


async def test_cancelling_a_dag_aborts_its_running_model_request(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    model = agent["model"]
    fake_llm.slow(model, SLOW_S)
    handle = await start_dag(
        client, settings, NodeSpec(id="think", agent=agent["name"], prompt="take your time")
    )
    await eventually(lambda: fake_llm.in_flight[model] == 1, "the model request reaches the fake")

    await handle.cancel()
    took = await eventually(lambda: model in fake_llm.aborted, "the model request is aborted")

    assert fake_llm.in_flight[model] == 0
    assert await node_status(handle, "think") == NodeStatus.cancelled
    print(f"model request aborted {took:.1f}s after the cancel")


async def test_cancelling_a_dag_cancels_its_running_http_tool_activity(
    hits: Hits, client: Client, settings: Settings, worker: None
) -> None:
    node = NodeSpec(
        id="call", tool="http_request", input={"url": hits.url("dag", delay=SLOW_S), "timeout_s": 55}
    )
    handle = await start_dag(client, settings, node)
    await eventually(lambda: hits.in_flight["dag"] == 1, "the request reaches the server")

    await handle.cancel()
    took = await eventually(lambda: "dag" in hits.aborted, "the request is dropped")

    assert hits.counts["dag"] == 1
    assert await node_status(handle, "call") == NodeStatus.cancelled
    print(f"http request dropped {took:.1f}s after the cancel")
