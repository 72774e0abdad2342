"""Provider limits hold across worker processes, queue requests instead of failing them, show the
queueing in the node's status, and a provider's Retry-After sets when the retry comes.

The cross-process tests run a DAG on a task queue of their own: this process runs the workflows
(no activities), and two worker processes (`provider_worker_main.py`) run every activity, each at
most a few at a time, fewer than the DAG's requests, so both must send some. The fake provider
records when each request arrived and was answered; the limits are checked on what it saw.
Agent versions with a tool run the pydantic-ai agent loop (its model-request activity), the
others one `agent_request` activity: both paths are limited.
"""

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from contracts.agents import AGENT_REQUEST_ACTIVITY
from contracts.dag import DagSpec, NodeSpec, RunDagInput
from contracts.provider_limits import WAITING_FOR_CAPACITY
from core.db import session_scope
from core.models.provider import ProviderLease
from core.settings import Settings
from tests.api.dag_helpers import CLOSED, wait_closed, wait_for
from tests.fakes.openai_server import Fail, FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.stack import ROOT
from worker import ACTIVITIES, WORKFLOW_FAILURE_TYPES, WORKFLOW_RUNNER, WORKFLOWS
from workflows.dag import DagWorkflow

BOUND_S = 120.0
"""Generous bound on waiting for a state the test expects."""
ARRIVAL_SLACK_S = 1.0
"""What may pass between a request's admission (the database's clock) and the fake recording its
arrival (after reading the body): the window is checked on the fake's clock, less this."""


@asynccontextmanager
async def activity_workers(task_queue: str, *, processes: int, max_activities: int) -> AsyncIterator[None]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = []
    try:
        for _ in range(processes):
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.activities.provider_worker_main",
                task_queue,
                str(max_activities),
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
            )
            children.append(child)
            assert child.stdout is not None
            assert (await asyncio.wait_for(child.stdout.readline(), BOUND_S)).strip() == b"ready"
        yield
    finally:
        for child in children:
            if child.returncode is None:
                child.terminate()
                await child.wait()


@asynccontextmanager
async def limits_stack(client: Client, *, max_activities: int) -> AsyncIterator[str]:
    """A task queue with this process running the workflows and two worker processes the
    activities; answers the queue."""
    task_queue = f"limits-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            activity_workers(task_queue, processes=2, max_activities=max_activities)
        )
        await both_polling(client, task_queue)
        await stack.enter_async_context(
            Worker(
                client,
                task_queue=task_queue,
                workflows=WORKFLOWS,
                activities=ACTIVITIES,  # the local ones run here, with the workflow
                workflow_runner=WORKFLOW_RUNNER,
                workflow_failure_exception_types=WORKFLOW_FAILURE_TYPES,
                no_remote_activities=True,
            )
        )
        yield task_queue


async def both_polling(client: Client, task_queue: str) -> None:
    """Until Temporal has seen both worker processes poll for activities: a process prints
    `ready` as its worker starts, and on a loaded machine its first poll can come later than the
    first activities, which the other process then takes alone."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    deadline = time.monotonic() + BOUND_S
    while True:
        try:
            if len((await client.workflow_service.describe_task_queue(request)).pollers) >= 2:
                return
        except RPCError as exc:  # a loaded dev server has answered CANCELLED here: ask again
            if exc.status != RPCStatusCode.CANCELLED:
                raise
        assert time.monotonic() < deadline, "the two activity workers never both polled"
        await asyncio.sleep(0.1)


async def run_dag(client: Client, task_queue: str, nodes: list[NodeSpec]) -> str:
    execution_id = f"dag-limits-{uuid.uuid4().hex[:8]}"
    spec = DagSpec(name="limits", max_parallel=len(nodes), nodes=nodes)
    await client.start_workflow(
        DagWorkflow.run, RunDagInput(spec=spec), id=execution_id, task_queue=task_queue
    )
    return execution_id


def chat_calls(fake: FakeOpenAI, *models: str) -> list[dict[str, Any]]:
    """The fake's answered requests for these models, by arrival."""
    calls = [r for r in fake.requests if r["body"].get("model") in models and "done_at" in r]
    return sorted(calls, key=lambda r: r["at"])


def peak_in_flight(calls: list[dict[str, Any]]) -> int:
    """The most requests the fake was answering at once."""
    edges = sorted([(c["at"], 1) for c in calls] + [(c["done_at"], -1) for c in calls])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


async def workers_that_held(settings: Settings, provider_id: int) -> set[str]:
    """The worker processes (host:pid) whose requests to a provider took a place within its limits."""
    async with session_scope(settings) as session:
        rows = await session.exec(
            select(ProviderLease.worker).where(col(ProviderLease.provider_id) == provider_id).distinct()
        )
        return set(rows.all())


async def eventually(check: Callable[[], Any], what: str) -> Any:
    started = time.monotonic()
    while not (found := await check()):
        if time.monotonic() - started > BOUND_S:
            pytest.fail(f"not within {BOUND_S}s: {what}")
        await asyncio.sleep(0.2)
    return found


async def test_max_concurrency_holds_across_two_worker_processes_and_both_agent_modes(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm, max_concurrency=2)
    one_activity = await make_agent(api, provider["id"])
    agent_loop = await make_agent(api, provider["id"], tools=["calculator"])
    for agent in (one_activity, agent_loop):
        fake_llm.slow(agent["model"], 1.0)  # long enough that unlimited requests would overlap
    nodes = [NodeSpec(id=f"one{i}", agent=one_activity["name"], prompt=f"q{i}") for i in range(4)]
    nodes += [NodeSpec(id=f"loop{i}", agent=agent_loop["name"], prompt=f"q{i}") for i in range(2)]
    async with limits_stack(client, max_activities=3) as task_queue:
        execution_id = await run_dag(client, task_queue, nodes)
        done = await wait_closed(api, execution_id)
    assert done["status"] == "succeeded", done
    calls = chat_calls(fake_llm, one_activity["model"], agent_loop["model"])
    assert len(calls) == 6
    assert peak_in_flight(calls) == 2
    assert len(await workers_that_held(settings, provider["id"])) == 2


async def test_per_minute_limits_hold_across_two_worker_processes_and_queued_nodes_say_so(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    by_requests = await make_provider(api, fake_llm, requests_per_minute=2)
    # A request is estimated at 4 prompt tokens + max_tokens 20 = 24 and answers 18 tokens.
    by_tokens = await make_provider(api, fake_llm, tokens_per_minute=60)
    rpm_agent = await make_agent(api, by_requests["id"])
    tpm_agent = await make_agent(api, by_tokens["id"], max_tokens=20)
    for agent in (rpm_agent, tpm_agent):
        # Each answer holds its activity slot a while, so one process cannot take every request
        # (a fresh-clone run saw one process take all eight when they answered at once).
        fake_llm.slow(agent["model"], 2.0)
    nodes = [NodeSpec(id=f"r{i}", agent=rpm_agent["name"], prompt=f"r{i}") for i in range(4)]
    nodes += [NodeSpec(id=f"t{i}", agent=tpm_agent["name"], prompt=f"t{i}") for i in range(4)]
    async with limits_stack(client, max_activities=4) as task_queue:
        execution_id = await run_dag(client, task_queue, nodes)

        async def reasons() -> set[str]:
            body = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
            return {n["waiting_reason"] for n in body["nodes"] if n.get("waiting_reason")}

        async def both_limits_shown() -> set[str] | None:
            seen = await reasons()
            shown = "\n".join(seen)
            return seen if "requests_per_minute" in shown and "tokens_per_minute" in shown else None

        seen = await eventually(both_limits_shown, "queued nodes showing both limits")
        # Now every request has its row, admitted or queued; rows of the first minute are gone
        # by the end (each admission deletes what no longer counts), so the holders are read here.
        held = await workers_that_held(settings, by_requests["id"])
        held |= await workers_that_held(settings, by_tokens["id"])
        done = await wait_for(api, execution_id, CLOSED, within_s=BOUND_S)
    assert done["status"] == "succeeded", done
    assert all(reason.startswith(WAITING_FOR_CAPACITY) for reason in seen), seen
    assert not any(n.get("waiting_reason") for n in done["nodes"])

    by_rpm = [c["at"] for c in chat_calls(fake_llm, rpm_agent["model"])]
    assert len(by_rpm) == 4
    # No three requests inside one minute: the third comes a minute after the first.
    assert all(b - a >= 60 - ARRIVAL_SLACK_S for a, b in zip(by_rpm, by_rpm[2:], strict=False)), by_rpm
    by_tpm = [c["at"] for c in chat_calls(fake_llm, tpm_agent["model"])]
    assert len(by_tpm) == 4
    # 18 tokens each: at most three (54 of 60) inside one minute; the fourth a minute after the first.
    assert all(b - a >= 60 - ARRIVAL_SLACK_S for a, b in zip(by_tpm, by_tpm[3:], strict=False)), by_tpm
    assert len(held) == 2, held


async def test_a_429_with_retry_after_delays_the_retry_by_exactly_that(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    # The retry policy's own backoff would retry after 1 s.
    fake_llm.script(agent["model"], Fail(429, "slow down", headers={"Retry-After": "4"}))
    execution_id = await run_dag(
        client, settings.task_queue, [NodeSpec(id="ask", agent=agent["name"], prompt="hello")]
    )
    done = await wait_closed(api, execution_id)
    assert done["status"] == "succeeded", done
    calls = [c["at"] for c in chat_calls(fake_llm, agent["model"])]
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 4
    events = [e async for e in client.get_workflow_handle(execution_id).fetch_history_events()]
    scheduled = next(
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == AGENT_REQUEST_ACTIVITY
    )
    started = next(
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id == scheduled.event_id
    )
    assert started.activity_task_started_event_attributes.attempt == 2
    assert started.event_time.ToDatetime() - scheduled.event_time.ToDatetime() >= timedelta(seconds=4)
    failure = await client.data_converter.decode_failure(
        started.activity_task_started_event_attributes.last_failure
    )
    assert isinstance(failure, ApplicationError)
    assert failure.next_retry_delay == timedelta(seconds=4)
    assert "retrying in 4 s, as the provider asked" in failure.message
