"""An execution's live output beside its event stream: the SSE endpoint's merge.

`GET /dag-executions/{id}/events` serves the execution's durable events (services/dag_event_stream.py)
and, interleaved as they arrive, its agent nodes' text as it is written: the `node.output_delta`
live events (activities/live_output.py) that this API process's hub receives. Deltas are not part
of the durable stream: they carry no SSE id (a `Last-Event-ID` names a stream offset). A client
that connects, or reconnects, is first replayed the execution's kept deltas (live events are
kept a day), so a running node's text starts again from offset 0 and goes on live; a client
keeps one text per node and attempt and skips offsets it has (every delta carries its offset).
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, func, select

from core.db import session_scope
from core.events import NODE_OUTPUT_DELTA
from core.models import LiveEvent
from services.dag_event_stream import StreamItem
from services.realtime import EventHub


@dataclass(frozen=True)
class LiveDelta:
    """Text a running agent node wrote, at `offset` in its text of this `attempt`."""

    node_id: str | None
    attempt: int
    offset: int
    text: str


_DONE = object()


async def _first_delta(hub: EventHub, execution_id: str) -> int | None:
    """The id of the execution's first kept delta, if any."""
    async with session_scope(hub.settings) as session:
        query = select(func.min(LiveEvent.id)).where(
            col(LiveEvent.type) == NODE_OUTPUT_DELTA,
            col(LiveEvent.data)["execution_id"].as_string() == execution_id,
        )
        first = (await session.exec(query)).one()
    return int(first) if first is not None else None


async def merged(
    items: AsyncIterator[StreamItem], hub: EventHub, execution_id: str
) -> AsyncIterator[StreamItem | LiveDelta]:
    """The stream's items, with the execution's deltas interleaved (the kept ones first, then as
    they arrive), until the stream ends."""
    first = await _first_delta(hub, execution_id)
    async with hub.subscribe(after=first - 1 if first is not None else None) as live:
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def stream() -> None:
            try:
                async for item in items:
                    await queue.put(item)
            except Exception as exc:  # handed to the reader, raised there
                await queue.put(exc)
            await queue.put(_DONE)

        async def deltas() -> None:
            while True:
                event = await live.next()
                data = event.get("data") or {}
                if event.get("type") == NODE_OUTPUT_DELTA and data.get("execution_id") == execution_id:
                    await queue.put(
                        LiveDelta(
                            node_id=data.get("node_id"),
                            attempt=int(data.get("attempt", 1)),
                            offset=int(data.get("offset", 0)),
                            text=str(data.get("text", "")),
                        )
                    )

        tasks = [asyncio.create_task(stream()), asyncio.create_task(deltas())]
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
