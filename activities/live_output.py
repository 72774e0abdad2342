"""An agent node's text as it is written: coalesced deltas published as live events.

A streamed model request hands its text to `LiveOutput`, which publishes it as `node.output_delta`
events (core/events.py: a `live_event` row and a NOTIFY, which `WS /api/v1/ws` subscribers
receive at once), at most every `FLUSH_S` seconds (and at most `FLUSH_CHARS` characters in one). Nothing of it
goes into the workflow history: the node's whole output still arrives once, with the activity's
result. Each event names the execution, the node (from the activity id), the attempt (a retried
attempt starts again at offset 0, so a client that sees a new attempt resets the node's text)
and the text's offset in the node's output.
"""

import logging
import time
from collections.abc import AsyncIterable
from typing import Any

from pydantic_ai.messages import AgentStreamEvent, PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta
from temporalio import activity

from contracts.agents import node_of_activity
from core.db import session_scope
from core.events import NODE_OUTPUT_DELTA, publish
from core.settings import get_settings

log = logging.getLogger(__name__)

FLUSH_S = 0.1
FLUSH_CHARS = 32 * 1024
"""A fast model's text waits at most `FLUSH_S` (its first text not at all); one event carries at
most this much of it."""


class LiveOutput:
    """Publishes a streamed answer's text as it grows; inert outside an activity."""

    def __init__(self, source: str | None = None) -> None:
        """`source` names the node as an activity id would (default: this activity's own id)."""
        info = activity.info() if activity.in_activity() else None
        node_id = node_of_activity(source or info.activity_id) if info is not None else None
        self._where = (
            {"execution_id": info.workflow_id, "node_id": node_id, "attempt": info.attempt}
            if info is not None and info.workflow_id
            else None
        )
        self._buffer = ""
        self._offset = 0
        self._flushed_at = -FLUSH_S  # the first text goes out at once: time to first token

    async def add(self, text: str) -> None:
        if self._where is None or not text:
            return
        self._buffer += text
        if len(self._buffer) >= FLUSH_CHARS or time.monotonic() - self._flushed_at >= FLUSH_S:
            await self.flush()

    async def flush(self) -> None:
        if self._where is None or not self._buffer:
            return
        text, self._buffer = self._buffer, ""
        data = {**self._where, "offset": self._offset, "text": text}
        self._offset += len(text)
        self._flushed_at = time.monotonic()
        try:
            async with session_scope(get_settings()) as session:
                await publish(session, NODE_OUTPUT_DELTA, data)
                await session.commit()
        except Exception:  # live output is a courtesy: the answer itself must not fail with it
            log.warning("could not publish a node's live output", exc_info=True)


def text_of(event: AgentStreamEvent) -> str:
    """The text a model stream event adds to the answer ("" for anything else, such as tool calls)."""
    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
        return event.part.content
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return event.delta.content_delta
    return ""


async def publish_text(ctx: Any, events: AsyncIterable[AgentStreamEvent]) -> None:
    """pydantic-ai's event stream handler for the loop's streamed model requests (it runs inside
    their activity): the text goes out as the request is answered."""
    deps = ctx.deps
    live = LiveOutput(source=getattr(deps, "live", None))
    async for event in events:
        await live.add(text_of(event))
    await live.flush()
