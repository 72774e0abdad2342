"""Heartbeats for activities that can outlive a few seconds, and their timeouts, defined once.

Temporal delivers an activity's cancellation only in the answer to a heartbeat, and notices a
dead worker only when a heartbeat is missing for `heartbeat_timeout`; without both, a cancelled
node keeps running and an activity on a killed worker waits out its whole start-to-close timeout
(up to 600 s) before it is retried. So every regular activity that does I/O runs inside
`heartbeating()` and every call to it sets one of the timeouts below.

The beating itself is pydantic-ai's (`heartbeating()`, which its own model-request and tool-call
activities already use: a supervised background task beating every half heartbeat timeout), so
goalflow's activities and pydantic-ai's behave alike. It lives in a private pydantic-ai module;
if an upgrade moves it, this import fails at worker start, not silently.

Local activities cannot heartbeat (they live inside a workflow task), so they are left alone: a
tool is only `local` when it finishes in milliseconds.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import wraps
from typing import ParamSpec, TypeVar

from pydantic_ai.durable_exec.temporal._toolset import heartbeating as _pydantic_ai_heartbeating
from temporalio import activity

P = ParamSpec("P")
R = TypeVar("R")

MODEL_HEARTBEAT_TIMEOUT = timedelta(seconds=20)
"""Model requests: a provider can take minutes to answer, but the worker beats all along."""
TOOL_HEARTBEAT_TIMEOUT = timedelta(seconds=20)
"""Tool activities (DAG tool nodes and agent tool calls): HTTP, memories, artifacts, run_agent."""
STORE_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
"""DAG and task bookkeeping (offloading an output, loading an artifact): short database/file I/O."""


@asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat in the background while the body runs; a no-op outside regular activities."""
    if not activity.in_activity() or activity.info().is_local:
        yield
        return
    async with _pydantic_ai_heartbeating():
        yield


def heartbeats(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate an activity function (below `@activity.defn`) so its whole body heartbeats."""

    @wraps(fn)
    async def beating(*args: P.args, **kwargs: P.kwargs) -> R:
        async with heartbeating():
            return await fn(*args, **kwargs)

    return beating
