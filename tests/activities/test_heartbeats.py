"""Tool activities heartbeat: a healthy slow one outlives its heartbeat timeout, and one whose
worker is killed is retried on another worker after the heartbeat timeout, not after its
start-to-close timeout (600 s here). The heartbeat timeout is the test's own, 2 s, set by the
calling workflow the way DagWorkflow sets `TOOL_HEARTBEAT_TIMEOUT`."""

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.tools.registry import TOOLS
from contracts.tools import ToolResult
from core.settings import Settings, get_settings
from tests.activities.slow_http import Hits, serve

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 2.0
START_TO_CLOSE = timedelta(seconds=600)
BOUND_S = 120


@workflow.defn(sandboxed=False)
class SlowToolWorkflow:
    """Calls one tool activity with a short heartbeat timeout and a long start-to-close one."""

    @workflow.run
    async def run(self, tool: str, args: dict[str, Any]) -> ToolResult:
        return await workflow.execute_activity(
            tool,
            args,
            result_type=ToolResult,
            activity_id="slow-tool",
            start_to_close_timeout=START_TO_CLOSE,
            heartbeat_timeout=timedelta(seconds=HEARTBEAT_S),
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1)),
        )


@pytest.fixture
def hits(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hits]:
    monkeypatch.setattr(get_settings(), "http_allowlist", ["127.0.0.1"])
    with serve() as server:
        yield server


def workflow_worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[SlowToolWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


def activity_worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, activities=[TOOLS["http_request"].activity])


async def started_attempts(handle: WorkflowHandle[Any, Any]) -> list[int]:
    return [
        e.activity_task_started_event_attributes.attempt
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_started_event_attributes")
    ]


async def test_slow_healthy_tool_outlives_its_heartbeat_timeout(hits: Hits, client: Client) -> None:
    task_queue = f"beats-{uuid.uuid4().hex[:8]}"
    args = {"url": hits.url("healthy", delay=3 * HEARTBEAT_S), "timeout_s": 30}
    async with workflow_worker(client, task_queue), activity_worker(client, task_queue):
        handle = await client.start_workflow(
            SlowToolWorkflow.run,
            args=["http_request", args],
            id=f"beats-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        result = await handle.result()
    assert result.output["json"] == {"key": "healthy", "n": 1}
    assert await started_attempts(handle) == [1]


async def test_tool_on_a_killed_worker_is_retried_elsewhere_within_the_heartbeat_timeout(
    hits: Hits, client: Client, settings: Settings
) -> None:
    task_queue = f"lost-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "HTTP_ALLOWLIST": json.dumps(["127.0.0.1"]), "PYTHONPATH": str(ROOT)}
    worker_a = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.activities.lost_worker_main",
        task_queue,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker_a.stdout is not None
        assert (await asyncio.wait_for(worker_a.stdout.readline(), BOUND_S)).strip() == b"ready"
        # The first request hangs far longer than the test; the retry is answered at once.
        args = {"url": hits.url("lost", delay=START_TO_CLOSE.total_seconds(), first=True), "timeout_s": 55}
        async with workflow_worker(client, task_queue):
            handle = await client.start_workflow(
                SlowToolWorkflow.run,
                args=["http_request", args],
                id=f"lost-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
            started = time.monotonic()
            while hits.in_flight["lost"] == 0:
                assert time.monotonic() - started < BOUND_S, "worker A never sent the request"
                await asyncio.sleep(0.1)
            worker_a.kill()
            await worker_a.wait()
            killed = time.monotonic()
            async with activity_worker(client, task_queue):
                result = await asyncio.wait_for(handle.result(), BOUND_S)
            took = time.monotonic() - killed
    finally:
        if worker_a.returncode is None:
            worker_a.kill()
            await worker_a.wait()
    assert result.output["json"] == {"key": "lost", "n": 2}
    assert await started_attempts(handle) == [2]
    assert hits.counts["lost"] == 2
    print(f"retried on worker B {took:.1f}s after worker A was killed")
