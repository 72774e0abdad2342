"""Goal runs: GoalWorkflow executions as Temporal knows them."""

from collections.abc import AsyncIterable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import MAX_DB_ID, SessionDep, SettingsDep, TemporalDep
from api.paging import CURSOR_HEADERS, CursorPageDep, link_next
from contracts.goals import GoalProgress
from contracts.runs import RunDetail, RunStatus, RunSummary
from services import run_events
from services import runs as service
from services.realtime import hub_of

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

RunIdPath = Annotated[str, Path(min_length=6, max_length=255, pattern=r"^goal-[A-Za-z0-9:_.-]+$")]


@router.get("", responses=CURSOR_HEADERS)
async def list_runs(
    request: Request,
    response: Response,
    client: TemporalDep,
    settings: SettingsDep,
    page: CursorPageDep,
    status: RunStatus | None = None,
    goal_id: Annotated[int | None, Query(alias="goalId", ge=1, le=MAX_DB_ID)] = None,
) -> list[RunSummary]:
    """Goal runs newest first (`?status=`, `?goalId=`), from Temporal visibility; the next page
    is `?cursor=<X-Next-Cursor>`."""
    found, next_cursor = await service.page_runs(
        client,
        settings,
        goal_id=goal_id,
        status=status,
        limit=page.limit,
        cursor=page.cursor,
        offset=page.offset,
    )
    link_next(request, response, next_cursor)
    return found


@router.get("/{run_id}")
async def get_run(run_id: RunIdPath, client: TemporalDep, settings: SettingsDep) -> RunDetail:
    """Status, timings, usage, result or failure, and the Web UI link of one run."""
    return await service.get_run(client, settings, run_id)


@router.get("/{run_id}/steps")
async def get_steps(run_id: RunIdPath, client: TemporalDep) -> GoalProgress:
    """Plan, nodes and summary: live while running, from the result once finished."""
    return await service.get_steps(client, run_id)


async def _existing(run_id: RunIdPath, client: TemporalDep) -> str:
    await service.ensure_exists(client, run_id)
    return run_id


@router.get("/{run_id}/events", response_class=EventSourceResponse)
async def run_events_stream(
    run_id: Annotated[str, Depends(_existing)],
    request: Request,
    client: TemporalDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(pattern=r"^(phase:[a-z]{1,20}|dag:\d{1,12}|report)$")] = None,
) -> AsyncIterable[ServerSentEvent]:
    """The run as SSE, plan to report: `progress` (the run's phase and its plan and summary
    steps, each time they change), the DAG's own events with their names (`node_started`,
    `node_succeeded`, ..., `gap`), then `report` (status, summary, artifacts, usage or failure)
    and `end`. A reconnect with `Last-Event-ID` resumes the DAG's events after the last one seen.
    An agent node's text comes as it is written, as `node_output_delta` events without an id, as
    on `GET /dag-executions/{id}/events`."""
    hub = hub_of(request.app.state)
    async for event in run_events.run_events(client, settings, run_id, last_event_id=last_event_id, hub=hub):
        yield ServerSentEvent(id=event.id, event=event.kind, data=event.data)
    yield ServerSentEvent(event="end", data={"run_id": run_id})


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_run(run_id: RunIdPath, session: SessionDep, client: TemporalDep) -> Response:
    """Delete a closed run's history; a running run is a 409 (cancel it first)."""
    await service.delete_run(session, client, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_run(run_id: RunIdPath, client: TemporalDep) -> Response:
    """Cancel a running run: it stops its DAG and closes as cancelled."""
    await service.cancel_run(client, run_id)
    return Response(status_code=status.HTTP_202_ACCEPTED)
