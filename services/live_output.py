"""An execution's live output beside its event stream: the SSE endpoint's merge.

`GET /dag-executions/{id}/events` serves the execution's durable events (services/dag_event_stream.py)
and, interleaved as they arrive, its agent nodes' text as it is written: the `node.output_delta`
live events (activities/live_output.py) that this API process's hub receives. Deltas are not part
of the durable stream: they carry no SSE id (a `Last-Event-ID` names a stream offset). A client
that connects, or reconnects, is first replayed the execution's kept deltas (live events are
kept a day), so a running node's text starts again from offset 0 and goes on live; a client
keeps one text per node and attempt and skips offsets it has (every delta carries its offset).
Only the execution's own deltas are replayed (read from the table after subscribing, so none
falls between the two; a live one already replayed is skipped by id).
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from core.db import session_scope
from core.events import NODE_OUTPUT_DELTA
from core.models import LiveEvent
from services.dag_event_stream import StreamItem
from services.realtime import REPLAY_LIMIT, EventHub


@dataclass(frozen=True)
class LiveDelta:
    """Text a running agent node wrote, at `offset` in its text of this `attempt`."""

    node_id: str | None
    attempt: int
    offset: int
    text: str


_DONE = object()


async def _kept(hub: EventHub, execution_id: str) -> list[LiveEvent]:
    """The execution's kept deltas (the newest `REPLAY_LIMIT`), oldest first."""
    async with session_scope(hub.settings) as session:
        query = (
            select(LiveEvent)
            .where(
                col(LiveEvent.type) == NODE_OUTPUT_DELTA,
                col(LiveEvent.data)["execution_id"].as_string() == execution_id,
            )
            .order_by(col(LiveEvent.id).desc())
            .limit(REPLAY_LIMIT)
        )
        return list(reversed((await session.exec(query)).all()))


def _delta(data: dict[str, Any]) -> LiveDelta:
    return LiveDelta(
        node_id=data.get("node_id"),
        attempt=int(data.get("attempt", 1)),
        offset=int(data.get("offset", 0)),
        text=str(data.get("text", "")),
    )


async def merged(
    items: AsyncIterator[StreamItem], hub: EventHub, execution_id: str
) -> AsyncIterator[StreamItem | LiveDelta]:
    """The stream's items, with the execution's deltas interleaved (the kept ones first, then as
    they arrive), until the stream ends."""
    async with hub.subscribe() as live:  # before reading the kept ones: nothing falls between
        kept = await _kept(hub, execution_id)
        replayed = max((event.id or 0 for event in kept), default=0)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for event in kept:
            queue.put_nowait(_delta(event.data))

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
                mine = event.get("type") == NODE_OUTPUT_DELTA and data.get("execution_id") == execution_id
                if mine and int(event["id"]) > replayed:  # not one replayed above
                    await queue.put(_delta(data))

        tasks = [asyncio.create_task(stream()), asyncio.create_task(deltas())]
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
