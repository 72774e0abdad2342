"""An execution's live output beside its event stream: the SSE endpoint's merge.

`GET /dag-executions/{id}/events` serves the execution's durable events (services/dag_event_stream.py)
and, interleaved as they arrive, its agent nodes' text as it is written: the `node.output_delta`
live events (activities/live_output.py) that this API process's hub receives. Deltas are not part
of the durable stream: they carry no SSE id (a `Last-Event-ID` names a stream offset). A client
that connects, or reconnects, is first replayed the execution's kept deltas (live events are
kept a day), so a running node's text starts again from offset 0 and goes on live; a client
keeps one text per node and attempt and skips offsets it has (every delta carries its offset).
Only the execution's own deltas are replayed (read from the table after subscribing, so none
falls between the two; a live one already handed out is skipped by id). Before a node's end is
passed on, the deltas the hub has not delivered yet are read from the table, so the text comes
first even where the hub polls (SQLite, every half second).

`until_done` does the same for a workflow that runs one agent and answers at its end (the agent
test of `POST /agents/{id}/test` with `"stream": true`): its deltas, then its outcome.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlmodel import col, select

from core.db import session_scope
from core.events import NODE_OUTPUT_DELTA
from core.models import LiveEvent
from services.dag_event_stream import Gap, StreamItem
from services.realtime import REPLAY_LIMIT, EventHub, Subscriber


@dataclass(frozen=True)
class LiveDelta:
    """Text a running agent node wrote, at `offset` in its text of this `attempt`."""

    node_id: str | None
    attempt: int
    offset: int
    text: str


@dataclass(frozen=True)
class _Queued:
    """A delta waiting in the merge's queue, with its live event id (beside the stream's items)."""

    event_id: int
    delta: LiveDelta


_DONE = object()
NODE_ENDS = frozenset({"node_succeeded", "node_failed"})


async def _kept(
    hub: EventHub, execution_id: str, *, node_id: str | None = None, after: int = 0
) -> list[LiveEvent]:
    """The execution's kept deltas (of one node, if given) after the id `after` (the newest
    `REPLAY_LIMIT`), oldest first."""
    data = col(LiveEvent.data)
    mine = [data["execution_id"].as_string() == execution_id, col(LiveEvent.id) > after]
    if node_id is not None:
        mine.append(data["node_id"].as_string() == node_id)
    async with session_scope(hub.settings) as session:
        query = (
            select(LiveEvent)
            .where(col(LiveEvent.type) == NODE_OUTPUT_DELTA, *mine)
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


async def _deltas_into(queue: "asyncio.Queue[Any]", live: Subscriber, workflow_id: str) -> None:
    """Forever: the workflow's deltas among the hub's live events, onto `queue`."""
    while True:
        event = await live.next()
        data = event.get("data") or {}
        if event.get("type") == NODE_OUTPUT_DELTA and data.get("execution_id") == workflow_id:
            await queue.put(_Queued(int(event["id"]), _delta(data)))


async def merged(
    items: AsyncIterator[StreamItem], hub: EventHub, execution_id: str
) -> AsyncIterator[StreamItem | LiveDelta]:
    """The stream's items, with the execution's deltas interleaved (the kept ones first, then as
    they arrive), until the stream ends."""
    async with hub.subscribe() as live:  # before reading the kept ones: nothing falls between
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for event in await _kept(hub, execution_id):
            queue.put_nowait(_Queued(event.id or 0, _delta(event.data)))

        async def stream() -> None:
            try:
                async for item in items:
                    await queue.put(item)
            except Exception as exc:  # handed to the reader, raised there
                await queue.put(exc)
            await queue.put(_DONE)

        tasks = [asyncio.create_task(stream()), asyncio.create_task(_deltas_into(queue, live, execution_id))]
        delivered: set[int] = set()  # a delta that comes twice (replayed, then live) goes once
        last_of: dict[str | None, int] = {}  # per node: one activity writes its deltas in order
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, _Queued):
                    event_id, delta = item.event_id, item.delta
                    if event_id not in delivered:
                        delivered.add(event_id)
                        last_of[delta.node_id] = max(last_of.get(delta.node_id, 0), event_id)
                        yield delta
                    continue
                if not isinstance(item, Gap) and item[1].kind in NODE_ENDS:  # (offset, event)
                    # A node's text comes before its end, though the hub may still be on its way
                    # with the last of it (on SQLite it polls the table): read what it has not.
                    node_id = item[1].node_id
                    for event in await _kept(
                        hub, execution_id, node_id=node_id, after=last_of.get(node_id, 0)
                    ):
                        if event.id is not None and event.id not in delivered:
                            delivered.add(event.id)
                            last_of[node_id] = event.id
                            yield _delta(event.data)
                yield item
        finally:
            for task in tasks:
                task.cancel()


T = TypeVar("T")


@dataclass(frozen=True)
class _Outcome(Generic[T]):
    """What the awaited work ended with: its value, or the exception it raised."""

    value: T | None = None
    error: BaseException | None = None


async def until_done(
    hub: EventHub, workflow_id: str, outcome: Callable[[], Awaitable[T]]
) -> AsyncIterator[LiveDelta | T]:
    """A workflow's deltas as they are written (the kept ones first), then what `outcome()` gives
    (or raises), after every delta written before it: for a caller that waits on the one agent run
    of a workflow, such as an agent test. `outcome` is called once iterating starts; closing the
    iterator stops waiting on it."""
    async with hub.subscribe() as live:  # before reading the kept ones: nothing falls between
        queue: asyncio.Queue[_Queued | _Outcome[T]] = asyncio.Queue()
        for event in await _kept(hub, workflow_id):
            queue.put_nowait(_Queued(event.id or 0, _delta(event.data)))

        async def result() -> None:
            try:
                await queue.put(_Outcome(value=await outcome()))
            except Exception as exc:  # handed to the reader, raised there
                await queue.put(_Outcome(error=exc))

        tasks = [asyncio.create_task(result()), asyncio.create_task(_deltas_into(queue, live, workflow_id))]
        delivered: set[int] = set()
        try:
            while isinstance(item := await queue.get(), _Queued):
                if item.event_id not in delivered:
                    delivered.add(item.event_id)
                    yield item.delta
            # Its deltas were committed before it ended, but the hub may still be on its way with
            # the last of them (on SQLite it polls the table): read what it has not delivered.
            for event in await _kept(hub, workflow_id, after=max(delivered, default=0)):
                if event.id is not None and event.id not in delivered:
                    delivered.add(event.id)
                    yield _delta(event.data)
            if item.error is not None:
                raise item.error
            yield cast(T, item.value)
        finally:
            for task in tasks:
                task.cancel()
