"""Agent nodes at the speed of the model, without giving up durability (issue 14).

A node whose agent version lists no tools is one `agent_request` activity; independent nodes
really run their model requests at the same time; a request that completed is never sent again
when the worker running the DAG is killed; an answer that needs a second request falls back to
the agent loop in the workflow. The figures themselves come from bench/agent_overhead.py.

Record the kept history again (after a deliberate, patched change) with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_agent_node_speed.py`.
"""

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from contracts.agents import NEEDS_AGENT_LOOP
from contracts.dag import DagSpec, ExecutionStatus, NodeSpec, RunDagInput
from core.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, echo, tool_call
from tests.helpers import make_agent, make_provider
from tests.stack import ROOT
from tests.workflows.replay import HISTORIES, record, replayer, scheduled_activities
from worker import build_worker
from workflows.dag import DagWorkflow

RECORDED = HISTORIES / "dag_agent_node_modes.json"
BOUND_S = 120
"""Generous bound on waiting for a state the test expects."""


async def eventually(check: Callable[[], bool], what: str) -> None:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > BOUND_S:
            pytest.fail(f"not within {BOUND_S}s: {what}")
        await asyncio.sleep(0.05)


async def start(client: Client, queue: str, spec: DagSpec) -> WorkflowHandle[DagWorkflow, Any]:
    return await client.start_workflow(
        DagWorkflow.run, RunDagInput(spec=spec), id=f"dag-speed-{uuid.uuid4().hex[:8]}", task_queue=queue
    )


async def test_independent_agent_nodes_each_run_as_one_activity_with_their_requests_in_flight_together(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    # Far longer than starting six activities takes, so only overlap explains the peak.
    fake_llm.slow(agent["model"], 3.0)
    spec = DagSpec(
        name="parallel-agents",
        max_parallel=6,
        nodes=[NodeSpec(id=f"q{i}", agent=agent["name"], prompt=f"question {i}") for i in range(6)],
    )
    handle = await start(client, settings.task_queue, spec)
    result = await handle.result()

    assert result.status == ExecutionStatus.succeeded
    assert fake_llm.peak_in_flight[agent["model"]] == 6
    assert len(fake_llm.calls(agent["model"])) == 6
    scheduled = scheduled_activities(await handle.fetch_history())
    agent_runs = sorted(activity_id for kind, activity_id in scheduled if kind == "agent_request")
    assert agent_runs == [f"q{i}-1-agent-1" for i in range(6)]
    assert not [kind for kind, _ in scheduled if "model_request" in kind]  # no agent loop
    assert result.usage.requests == 6 and result.usage.total_tokens == 6 * 18


async def test_an_answer_that_needs_a_second_request_falls_back_to_the_agent_loop(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    plain = await make_agent(api, provider["id"])
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    structured = await make_agent(api, provider["id"], output_schema=schema)
    # Text where the schema's output tool must be called: pydantic-ai asks again, which one
    # activity may not do; the loop then gets a valid answer at its first request.
    fake_llm.script(
        structured["model"],
        lambda body: {"role": "assistant", "content": "seven"},
        lambda body: tool_call(body["tools"][0]["function"]["name"], {"n": 7}),
    )
    spec = DagSpec(
        name="agent-node-modes",
        nodes=[
            NodeSpec(id="plain", agent=plain["name"], prompt="say hi"),
            NodeSpec(id="count", agent=structured["name"], prompt="count", depends_on=["plain"]),
        ],
    )
    handle = await start(client, settings.task_queue, spec)
    result = await handle.result()
    history = await handle.fetch_history()

    assert result.status == ExecutionStatus.succeeded
    assert result.outputs == {"count": {"n": 7}}
    assert len(fake_llm.calls(structured["model"])) == 2
    nodes = {n.id: n for n in result.nodes}
    assert nodes["count"].usage.requests == 2  # the request the activity spent counts too
    kinds = [kind for kind, _ in scheduled_activities(history)]
    assert kinds.count("agent_request") == 2
    assert sum("model_request" in kind for kind in kinds) == 1
    failures = [
        e.activity_task_failed_event_attributes.failure.application_failure_info.type
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert failures == [NEEDS_AGENT_LOOP]
    await replayer(DagWorkflow).replay_workflow(history)
    record(RECORDED, history)


async def test_a_completed_agent_node_request_is_not_sent_again_after_the_worker_is_killed(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    answered: Counter[str] = Counter()

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        answered[str(body["messages"][-1]["content"])] += 1
        return echo(body)

    fake_llm.handlers[agent["model"]] = answer
    fake_llm.slow(agent["model"], 1.5)
    queue = f"speed-kill-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TASK_QUEUE": queue,
        "WORKER_METRICS_ADDRESS": "",
        "PYTHONPATH": str(ROOT),
    }
    worker_a = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        spec = DagSpec(
            name="kill-mid-chain",
            nodes=[
                NodeSpec(id="first", agent=agent["name"], prompt="first question"),
                NodeSpec(id="second", agent=agent["name"], prompt="second question", depends_on=["first"]),
            ],
        )
        handle = await start(client, queue, spec)
        # Worker A answers the first node, then is killed while the second node's request runs.
        await eventually(lambda: answered["first question"] == 1, "the first node answered on worker A")
        await eventually(lambda: fake_llm.in_flight[agent["model"]] == 1, "the second request in flight")
        worker_a.send_signal(signal.SIGKILL)
        await worker_a.wait()
        async with build_worker(client, settings, task_queue=queue):
            result = await asyncio.wait_for(handle.result(), BOUND_S)
    finally:
        if worker_a.returncode is None:
            worker_a.kill()
            await worker_a.wait()

    assert result.status == ExecutionStatus.succeeded
    assert agent["model"] in fake_llm.aborted  # the kill cut the second request
    assert answered == {"first question": 1, "second question": 1}
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) == 2  # the cut request was retried, once


async def test_a_reused_provider_client_survives_a_connection_check(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    """Requests reuse one client per provider; validating the provider (which closes the client it
    checks with) must not close the one agent runs share."""
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    spec = DagSpec(
        name="reuse", on_failure="fail", nodes=[NodeSpec(id="ask", agent=agent["name"], prompt="hello")]
    )
    first = await (await start(client, settings.task_queue, spec)).result()
    checked = await api.post(f"/api/v1/providers/{provider['id']}/validate")
    assert checked.json()["ok"] is True, checked.text
    second = await (await start(client, settings.task_queue, spec)).result()
    assert (first.outputs, second.outputs) == ({"ask": "echo: hello"}, {"ask": "echo: hello"})
    assert len(fake_llm.calls(agent["model"])) == 2  # answered at once, no retried attempt
