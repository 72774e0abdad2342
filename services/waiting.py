"""Bounded waits for the workflows a request starts and answers from (agent test, task, planner).

A request that waits on a workflow must never hang on a worker that is gone, and work nobody
waits for any more must not start late. So:

- before starting, `require_worker` answers 503 at once when no worker has polled the task
  queue recently (nothing is started);
- `wait_bounded` waits at most `settings.wait_timeout_s`; then, if no worker has even picked the
  workflow up (no workflow task completed, so no activity was scheduled), it terminates it and
  answers 503 — nothing ran and nothing will run late; if the workflow is under way it answers
  `StillRunning` (the API's 202 with the workflow id to follow).
"""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from core.errors import Upstream
from core.settings import Settings
from services.temporal_errors import run_workflow

T = TypeVar("T")

POLLER_FRESHNESS = timedelta(minutes=2)
"""A poller seen this recently counts as a live worker (a long poll lasts about a minute)."""


class NoWorker(Upstream):
    """No worker is there to run the workflow (503); nothing was started or it was stopped unrun."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=503, kind="NoWorker")


@dataclass(frozen=True)
class StillRunning:
    """The workflow is under way but did not finish within the wait: follow it by its id."""

    workflow_id: str
    waited_s: float


async def live_pollers(client: Client, settings: Settings) -> list[str]:
    """Identities of the workers that polled the workflow task queue recently."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    now = datetime.now(UTC)
    return [
        p.identity
        for p in response.pollers
        if now - p.last_access_time.ToDatetime(tzinfo=UTC) < POLLER_FRESHNESS
    ]


async def require_worker(client: Client, settings: Settings) -> None:
    """503 unless a worker polled the task queue recently; called before anything is started."""
    if not await live_pollers(client, settings):
        raise NoWorker(
            f"no worker is polling task queue {settings.task_queue!r}; nothing was started "
            "(start the worker, or check /health/ready)"
        )


async def _picked_up(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether a worker completed the workflow's first task (so it may have scheduled work)."""
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return True
    return False


async def wait_bounded(
    handle: WorkflowHandle[Any, Any], result: Awaitable[T], *, settings: Settings
) -> T | StillRunning:
    """The workflow's result within the wait timeout, `StillRunning`, or NoWorker (see module)."""
    workflow_id = handle.id
    timeout_s = settings.wait_timeout_s
    try:
        return await asyncio.wait_for(run_workflow(result, workflow_id=workflow_id), timeout_s)
    except TimeoutError:
        pass
    try:
        picked_up = await _picked_up(handle)
        if not picked_up:
            await handle.terminate(reason=f"no worker picked it up within {timeout_s:g}s; nobody waits")
    except RPCError:
        # It closed (or was deleted) meanwhile: whoever follows the id sees how it ended.
        return StillRunning(workflow_id=workflow_id, waited_s=timeout_s)
    if not picked_up:
        raise NoWorker(
            f"no worker picked up workflow {workflow_id} within {timeout_s:g}s; it was stopped "
            "before anything ran (check the worker and /health/ready)"
        )
    return StillRunning(workflow_id=workflow_id, waited_s=timeout_s)
