"""Options every workflow uses for its small store activities (load a snapshot, save a report,
offload an output): one timeout and one retry policy, defined once."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

T = TypeVar("T")

STORE_TIMEOUT = timedelta(seconds=30)
"""Start-to-close of a store activity: a database round trip or a file write, never long."""

STORE_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10))
"""A store activity that fails five times is a real outage; the workflow decides what then."""


async def store_call(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    local_patch: str,
    summary: str,
    retry_policy: RetryPolicy | None = STORE_RETRY,
) -> T:
    """Run a store activity: as a local activity once `local_patch` is in the history, as a regular
    activity in histories recorded before it (`retry_policy` None: Temporal's default).

    A store activity is one short database round trip or file write, idempotent by its input, so
    it needs no task-queue round trip of its own: as a local activity it runs in the worker that
    runs the workflow, within the same workflow task, instead of costing a dispatch, an activity
    task and one more workflow task (bench/agent_overhead.py, goal runs)."""
    if workflow.patched(local_patch):
        return await workflow.execute_local_activity(
            fn, args=args, start_to_close_timeout=STORE_TIMEOUT, retry_policy=retry_policy, summary=summary
        )
    return await workflow.execute_activity(
        fn, args=args, start_to_close_timeout=STORE_TIMEOUT, retry_policy=retry_policy, summary=summary
    )
