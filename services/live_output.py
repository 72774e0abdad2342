"""An execution's live output beside its event stream: the SSE endpoint's merge.

`GET /dag-executions/{id}/events` serves the execution's durable events (services/dag_event_stream.py)
and, interleaved as they arrive, its agent nodes' text as it is written: the `node.output_delta`
live events (activities/live_output.py) that this API process's hub receives. Deltas are not part
of the durable stream: they carry no SSE id (a `Last-Event-ID` names a stream offset), and a
client that connects or reconnects gets a running node's text from the next delta on, each with
its offset in the node's text; the whole text arrives with `node_succeeded` either way.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from core.events import NODE_OUTPUT_DELTA
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


async def merged(
    items: AsyncIterator[StreamItem], hub: EventHub, execution_id: str
) -> AsyncIterator[StreamItem | LiveDelta]:
    """The stream's items, with the execution's deltas interleaved as they arrive, until the
    stream ends."""
    async with hub.subscribe() as live:
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
