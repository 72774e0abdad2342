"""The source behind `GET /dag-executions/{id}/events`: every event of an execution, in order.

DagWorkflow's stream keeps only the newest events across continue-as-new; the ones it drops are
archived first (`dag_events` table, keyed by workflow id and stream offset). A subscriber gets
the archived events after its `Last-Event-ID`, then the live stream from the first offset it has
not had, so ids stay gap-free. A range that is truly gone (history from before the archive, or
an archive write that failed) is reported as a `Gap`, never skipped silently.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from contracts.dag import DagEvent
from core.db import session_scope
from core.models import DagEventRecord
from core.settings import Settings

EVENTS_TOPIC = "events"
PAGE = 1000
"""Archived events read per database round trip."""
POLL_COOLDOWN = timedelta(milliseconds=100)
"""Workflow Streams' default pause between polls once caught up."""


@dataclass(frozen=True)
class Gap:
    """Offsets `first`..`last` (inclusive) that can no longer be delivered."""

    first: int
    last: int


StreamItem = tuple[int, DagEvent] | Gap


async def _archived(
    settings: Settings, execution_id: str, *, start: int, stop: int | None = None
) -> AsyncIterator[tuple[int, DagEvent]]:
    """Archived events with `start <= offset < stop`, in order, a page per short session."""
    while True:
        query = select(DagEventRecord).where(
            DagEventRecord.workflow_id == execution_id, col(DagEventRecord.seq) >= start
        )
        if stop is not None:
            query = query.where(col(DagEventRecord.seq) < stop)
        async with session_scope(settings) as session:
            rows = (await session.exec(query.order_by(col(DagEventRecord.seq)).limit(PAGE))).all()
        for row in rows:
            yield row.seq, DagEvent.model_validate(row.payload)
        if len(rows) < PAGE:
            return
        start = rows[-1].seq + 1


async def _from_archive(
    settings: Settings, execution_id: str, *, start: int, stop: int | None = None
) -> AsyncIterator[StreamItem]:
    """Archived events from `start`, with a Gap before any offset the archive lacks."""
    expected = start
    async for offset, event in _archived(settings, execution_id, start=start, stop=stop):
        if offset > expected:
            yield Gap(expected, offset - 1)
        yield offset, event
        expected = offset + 1


async def events(
    client: Client,
    settings: Settings,
    execution_id: str,
    *,
    after: int | None,
    poll_cooldown: timedelta = POLL_COOLDOWN,
) -> AsyncIterator[StreamItem]:
    """(offset, event) after `after` (exclusive), or a Gap; ends when the execution closes.
    Follows continue-as-new, so the offsets keep counting across runs. A subscriber that can wait
    (the bot) passes a longer `poll_cooldown`: fewer polls, each one an update in the history."""
    expected = 0 if after is None else after + 1
    async for item in _from_archive(settings, execution_id, start=expected):
        yield item
        expected = (item.last if isinstance(item, Gap) else item[0]) + 1
    stream = WorkflowStreamClient.create(client, execution_id)
    async for live in stream.subscribe(
        EVENTS_TOPIC, from_offset=expected, result_type=DagEvent, poll_cooldown=poll_cooldown
    ):
        if live.offset < expected:
            continue
        if live.offset > expected:
            # The stream was truncated past `expected` (a continue-as-new since the archive was
            # read, or before it existed): what was archived meanwhile comes from the archive.
            async for item in _from_archive(settings, execution_id, start=expected, stop=live.offset):
                yield item
                expected = (item.last if isinstance(item, Gap) else item[0]) + 1
            if live.offset > expected:
                yield Gap(expected, live.offset - 1)
        yield live.offset, live.data
        expected = live.offset + 1


async def forget(session: AsyncSession, execution_id: str) -> None:
    """Delete an execution's archived events (when the execution itself is deleted)."""
    await session.exec(delete(DagEventRecord).where(col(DagEventRecord.workflow_id) == execution_id))
    await session.commit()
