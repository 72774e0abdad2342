"""Real-time events for `WS /api/v1/ws`: one hub per API process fans the `live_event` rows out
to every connected client.

Events are written by whichever process makes the change (an API process, a worker's activity)
in the same transaction as the change (core/events.py). Each API process learns of them:

- PostgreSQL: LISTEN on `EVENTS_CHANNEL`; the NOTIFY payload is the event itself (or its id when
  it is too large), delivered at commit, to every API process. After a lost connection the hub
  reconnects and reads what it missed from the table.
- SQLite: it polls the table every half second (one writer at a time, so ids arrive in order).

Each client has its own bounded queue: the hub never waits on a client. A client that falls
`QUEUE_SIZE` events behind is dropped with close code 1013 and the id it had reached; it
reconnects with `?after=<id>` and is replayed what it missed from the table (kept a day).
"""

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy import delete
from sqlmodel import col, select

from core.db import session_scope
from core.events import EVENTS_CHANNEL, event_json
from core.models import LiveEvent
from core.models.common import utcnow
from core.settings import Settings

log = logging.getLogger("goalflow.realtime")

QUEUE_SIZE = 1000
POLL_INTERVAL_S = 0.5
RECONNECT_S = 2.0
RETENTION = timedelta(days=1)
REPLAY_LIMIT = 5000
"""At most this many missed events are replayed to a reconnecting client."""
PRUNE_EVERY_S = 3600.0
RECENT_IDS = 2000


@dataclass(eq=False)
class Subscriber:
    """One client's queue; `overflowed` once it fell too far behind (the hub stops feeding it)."""

    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False
    last_id: int = 0
    """The id of the last event taken from the queue (what `?after=` resumes from)."""
    _held: list[dict[str, Any]] | None = None

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed:
            return
        if self._held is not None:  # replay in progress: keep live events until it is done
            self._held.append(event)
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning("a real-time client fell %d events behind; dropping it", QUEUE_SIZE)

    def release(self, replayed: list[dict[str, Any]]) -> None:
        """Queue the replayed events, then the live ones that arrived meanwhile (no duplicates)."""
        held, self._held = self._held or [], None
        seen = {event["id"] for event in replayed}
        for event in [*replayed, *(e for e in held if e["id"] not in seen)]:
            self.offer(event)

    async def next(self) -> dict[str, Any]:
        event = await self.queue.get()
        self.last_id = max(self.last_id, int(event["id"]))
        return event


class EventHub:
    """The process's fan-out of live events; started on the first subscription."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._last_id = 0
        self._recent: deque[int] = deque(maxlen=RECENT_IDS)

    @property
    def postgres(self) -> bool:
        return self.settings.database_url.startswith("postgresql")

    def publish_local(self, event: dict[str, Any]) -> None:
        """Hand one event to every subscriber (never blocks); one already handed out is skipped
        (a catch-up read after reconnecting can overlap what NOTIFY delivers)."""
        event_id = int(event["id"])
        if event_id in self._recent:
            return
        self._recent.append(event_id)
        self._last_id = max(self._last_id, event_id)
        for subscriber in list(self.subscribers):
            subscriber.offer(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, *, after: int | None = None) -> AsyncIterator[Subscriber]:
        """A subscriber for live events; with `after`, first every kept event after that id."""
        self._start()
        await self._ready.wait()
        subscriber = Subscriber(_held=[] if after is not None else None)
        self.subscribers.add(subscriber)
        try:
            if after is not None:
                subscriber.release(await self._since(after, limit=REPLAY_LIMIT))
            yield subscriber
        finally:
            self.subscribers.discard(subscriber)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="goalflow-event-hub")

    async def _since(self, after: int, *, limit: int) -> list[dict[str, Any]]:
        async with session_scope(self.settings) as session:
            query = (
                select(LiveEvent).where(col(LiveEvent.id) > after).order_by(col(LiveEvent.id)).limit(limit)
            )
            return [event_json(e) for e in (await session.exec(query)).all()]

    async def _newest_id(self) -> int:
        async with session_scope(self.settings) as session:
            rows = (
                await session.exec(select(LiveEvent.id).order_by(col(LiveEvent.id).desc()).limit(1))
            ).all()
        return int(rows[0]) if rows and rows[0] is not None else 0

    async def _catch_up(self) -> None:
        for event in await self._since(self._last_id, limit=REPLAY_LIMIT):
            self.publish_local(event)

    async def _run(self) -> None:
        pruned_at = 0.0
        while True:
            try:
                if not self._last_id:
                    self._last_id = await self._newest_id()
                if self.postgres:
                    await self._listen()
                else:
                    self._ready.set()
                    while True:
                        await self._catch_up()
                        loop = asyncio.get_running_loop()
                        if loop.time() - pruned_at > PRUNE_EVERY_S:
                            pruned_at = loop.time()
                            await self._prune()
                        await asyncio.sleep(POLL_INTERVAL_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: keep trying, clients stay connected
                log.warning("real-time event source failed (%s); reconnecting", type(exc).__name__)
                self._ready.set()
                await asyncio.sleep(RECONNECT_S)

    async def _listen(self) -> None:
        url = self.settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        # Keepalives: a connection that silently died is noticed, not listened to forever.
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3
        ) as conn:
            await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
            await self._catch_up()  # what was committed before LISTEN took effect
            self._ready.set()
            while True:
                await self._prune()
                async for notify in conn.notifies(timeout=PRUNE_EVERY_S):
                    event = json.loads(notify.payload)
                    if "type" not in event:  # too large to travel in a NOTIFY: read it
                        for stored in await self._since(int(event["id"]) - 1, limit=1):
                            self.publish_local(stored)
                        continue
                    self.publish_local(event)

    async def _prune(self) -> None:
        """Forget events older than RETENTION (any API process may do it; it is idempotent)."""
        async with session_scope(self.settings) as session:
            await session.exec(delete(LiveEvent).where(col(LiveEvent.created_at) < utcnow() - RETENTION))
            await session.commit()


def hub_of(state: Any) -> EventHub:
    """The app's hub (`app.state.event_hub`), made on first use."""
    hub: EventHub | None = getattr(state, "event_hub", None)
    if hub is None:
        hub = EventHub(state.settings)
        state.event_hub = hub
    return hub


async def close_hub(state: Any) -> None:
    """Stop the app's hub, if it was started (API shutdown)."""
    hub: EventHub | None = getattr(state, "event_hub", None)
    if hub is not None:
        await hub.close()
