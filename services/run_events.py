"""The source behind `GET /runs/{id}/events`: a goal run as one stream, plan to report.

A goal run is a GoalWorkflow that plans, runs a child DagWorkflow and writes a report. Its own
phases come from its `steps` query (a `progress` event each time the phase or the plan or summary
step changes); the child's node events come from the DAG's durable event stream
(services/dag_event_stream.py), relayed with their offsets; a `report` event closes it. So a
newcomer follows a run by the id `POST /goals/{id}/run` answered, without finding the DAG's id.

Event ids say where a reconnect resumes: `dag:<offset>` resumes the DAG's events right after that
offset (the current progress is sent again first: it is a snapshot, so repeating it is harmless);
`report` means nothing is left. With the API's event hub, an agent node's text comes as it is
written, as `node_output_delta` events without an id, merged as for the DAG's own stream
(services/live_output.py).
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from contracts.goals import GoalProgress
from contracts.runs import RunReport, RunStatus
from core.errors import Conflict
from core.settings import Settings
from services import dag_event_stream, live_output, runs
from services.dag_event_stream import Gap, StreamItem
from services.live_output import LiveDelta
from services.realtime import EventHub

POLL_S = 0.25
"""Pause between `steps` queries while the run plans or summarises (queries add no history)."""
REPORT_ID = "report"


@dataclass(frozen=True)
class RunEvent:
    """One SSE event: its id (where a reconnect resumes; None for a node's text), its name and
    its data."""

    id: str | None
    kind: str
    data: Any


def resume_point(last_event_id: str | None) -> int | None:
    """The DAG offset a `dag:<offset>` id resumes after (None: from the start)."""
    if last_event_id is None or not last_event_id.startswith("dag:"):
        return None
    return int(last_event_id.removeprefix("dag:"))


def _shape(progress: GoalProgress) -> tuple[object, ...]:
    """What a `progress` event reports; node steps are left to the DAG's own events."""
    own = tuple((step.id, step.status, step.error) for step in progress.steps if step.kind != "node")
    return progress.phase, own, progress.dag_workflow_id


def _id(progress: GoalProgress, dag_after: int | None) -> str:
    """A progress event keeps the DAG offset reached, so a reconnect does not replay the DAG."""
    return f"dag:{dag_after}" if dag_after is not None else f"phase:{progress.phase}"


async def _dag_events(
    client: Client,
    settings: Settings,
    dag_id: str,
    after: int | None,
    run_closed: bool,
    hub: EventHub | None,
) -> AsyncIterator[RunEvent] | None:
    """The DAG's events as run events (with its nodes' text when there is a hub); None while the
    child is not started yet."""
    stream = dag_event_stream.events(client, settings, dag_id, after=after)
    try:
        first = await anext(stream, None)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        if run_closed:  # the child never started, or its history is gone
            return _nothing()
        return None
    items = _chained(first, stream)
    return _relayed(live_output.merged(items, hub, dag_id) if hub is not None else items)


async def _chained(first: StreamItem | None, rest: AsyncIterator[StreamItem]) -> AsyncIterator[StreamItem]:
    if first is None:
        return
    yield first
    async for item in rest:
        yield item


async def _nothing() -> AsyncIterator[RunEvent]:
    return
    yield  # an empty async generator


async def _relayed(items: AsyncIterator[StreamItem | LiveDelta]) -> AsyncIterator[RunEvent]:
    async for item in items:
        if isinstance(item, LiveDelta):
            yield RunEvent(id=None, kind="node_output_delta", data=asdict(item))
        elif isinstance(item, Gap):
            gap = {"first": item.first, "last": item.last, "message": "these events are no longer kept"}
            yield RunEvent(id=f"dag:{item.last}", kind="gap", data=gap)
        else:
            offset, event = item
            yield RunEvent(id=f"dag:{offset}", kind=event.kind, data=event)


async def run_events(
    client: Client,
    settings: Settings,
    run_id: str,
    *,
    last_event_id: str | None = None,
    hub: EventHub | None = None,
) -> AsyncIterator[RunEvent]:
    """Progress, the DAG's events and the report, in order; ends when the run has closed."""
    if last_event_id == REPORT_ID:
        return
    dag_after = resume_point(last_event_id)
    followed = False
    said: tuple[object, ...] | None = None
    while True:
        try:
            status, progress = await runs.run_progress(client, run_id)
        except Conflict:  # no worker answered the query: wait for one, unless the run is over
            if (await runs.get_run(client, settings, run_id)).status != RunStatus.running:
                break
            await asyncio.sleep(POLL_S)
            continue
        closed = status != RunStatus.running
        if _shape(progress) != said:
            said = _shape(progress)
            yield RunEvent(id=_id(progress, dag_after), kind="progress", data=progress)
        if progress.dag_workflow_id and not followed:
            relayed = await _dag_events(client, settings, progress.dag_workflow_id, dag_after, closed, hub)
            if relayed is not None:
                async for event in relayed:
                    if event.id is not None:
                        dag_after = int(event.id.removeprefix("dag:"))
                    yield event
                followed = True
                continue  # the run's phase has moved on meanwhile: ask again now
        if closed:
            break
        await asyncio.sleep(POLL_S)
    yield RunEvent(id=REPORT_ID, kind="report", data=await report(client, settings, run_id))


async def report(client: Client, settings: Settings, run_id: str) -> RunReport:
    """How a closed run ended: its summary and artifacts, or its failure."""
    detail = await runs.get_run(client, settings, run_id)
    result = detail.result
    return RunReport(
        status=detail.status,
        summary=result.summary if result is not None else "",
        artifacts=result.artifacts if result is not None else [],
        usage=detail.usage,
        failure=detail.failure,
    )
