"""DAG executions: status, node states, live events (SSE), approvals, cancel, resume, fork, delete."""

from collections.abc import AsyncIterable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.paging import CURSOR_HEADERS, CursorPageDep, link_next
from contracts.dag import (
    ApprovalDecision,
    BudgetRaise,
    DagStatus,
    ExecutionStatus,
    ForkRequest,
    InputAnswer,
    NodeState,
    ResumeRequest,
)
from contracts.dag_executions import ExecutionDetail, ExecutionSummary, Started
from services import dag_event_stream, dag_fork, dag_resume, live_output
from services import dag_executions as service
from services.dag_event_stream import Gap
from services.dag_execution_list import page_executions
from services.dags import SpecInvalid
from services.live_output import LiveDelta
from services.realtime import hub_of

router = APIRouter(prefix="/api/v1", tags=["dag-executions"])

ExecutionId = Annotated[
    str,
    Path(pattern=r"^dag-[A-Za-z0-9_.:-]{1,200}$", description="Workflow id, dag-<dagId>-<shortid>"),
]


@router.get("/dag-executions", responses=CURSOR_HEADERS)
async def list_executions(
    request: Request,
    response: Response,
    client: TemporalDep,
    settings: SettingsDep,
    page: CursorPageDep,
    status_filter: Annotated[ExecutionStatus | None, Query(alias="status")] = None,
    dag_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> list[ExecutionSummary]:
    """DAG executions, newest first, from Temporal visibility; the next page is
    `?cursor=<X-Next-Cursor>`."""
    found, next_cursor = await page_executions(
        client,
        settings,
        dag_id=dag_id,
        status=status_filter,
        limit=page.limit,
        cursor=page.cursor,
        offset=page.offset,
    )
    link_next(request, response, next_cursor)
    return found


@router.get("/dag-executions/{execution_id}")
async def get_execution(
    execution_id: ExecutionId, client: TemporalDep, settings: SettingsDep
) -> ExecutionDetail:
    """Status, node states and usage (status query) with start/close times (describe)."""
    return await service.get_execution(client, settings, execution_id)


@router.delete("/dag-executions/{execution_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_execution(execution_id: ExecutionId, session: SessionDep, client: TemporalDep) -> None:
    """Delete a closed execution from Temporal (and its archived events); a running one answers
    409 (cancel it first)."""
    await service.delete(session, client, execution_id)


@router.get("/dag-executions/{execution_id}/sub-steps")
async def sub_steps(execution_id: ExecutionId, client: TemporalDep, settings: SettingsDep) -> list[NodeState]:
    """Every node's state."""
    return (await service.get_execution(client, settings, execution_id)).nodes


async def _existing(execution_id: ExecutionId, client: TemporalDep) -> str:
    """Resolve the execution before a stream starts, so an unknown id is a 404, not an empty
    stream."""
    await service.describe(client, execution_id)
    return execution_id


@router.get("/dag-executions/{execution_id}/events", response_class=EventSourceResponse)
async def execution_events(
    execution_id: Annotated[str, Depends(_existing)],
    request: Request,
    client: TemporalDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(pattern=r"^\d{1,12}$")] = None,
    after: Annotated[int | None, Query(ge=-1, description="Like Last-Event-ID")] = None,
) -> AsyncIterable[ServerSentEvent]:
    """Execution events as SSE; each `id` is the stream offset, so a reconnect with
    `Last-Event-ID` resumes right after it (archived events first, then the live stream). Offsets
    that can no longer be delivered come as one `gap` event naming them. An agent node's text
    comes as it is written, as `node_output_delta` events without an id (`node_id`, `attempt`,
    `offset` in the node's text, `text`), from the moment of connecting; the whole text comes
    with `node_succeeded`. The stream ends when the execution closes."""
    resume_after = int(last_event_id) if last_event_id is not None else after
    stream = dag_event_stream.events(client, settings, execution_id, after=resume_after)
    async for item in live_output.merged(stream, hub_of(request.app.state), execution_id):
        if isinstance(item, LiveDelta):
            yield ServerSentEvent(event="node_output_delta", data=asdict(item))
            continue
        if isinstance(item, Gap):
            missing = {"first": item.first, "last": item.last, "message": "these events are no longer kept"}
            yield ServerSentEvent(id=str(item.last), event="gap", data=missing)
            continue
        offset, event = item
        yield ServerSentEvent(id=str(offset), event=event.kind, data=event)
    yield ServerSentEvent(event="end", data={"execution_id": execution_id})


async def _decide(
    execution_id: str, decision: ApprovalDecision, client: TemporalDep, *, approve: bool
) -> DagStatus:
    return await service.decide(client, execution_id, decision, approve=approve)


@router.post("/dag-executions/{execution_id}/approve")
async def approve(execution_id: ExecutionId, decision: ApprovalDecision, client: TemporalDep) -> DagStatus:
    """Approve a node waiting for approval; the answer is the status after the decision."""
    return await _decide(execution_id, decision, client, approve=True)


@router.post("/dag-executions/{execution_id}/reject")
async def reject(execution_id: ExecutionId, decision: ApprovalDecision, client: TemporalDep) -> DagStatus:
    """Reject a node waiting for approval (it fails; `on_failure` decides what follows)."""
    return await _decide(execution_id, decision, client, approve=False)


@router.post("/dag-executions/{execution_id}/answer")
async def answer(execution_id: ExecutionId, body: InputAnswer, client: TemporalDep) -> DagStatus:
    """Answer the question a node's MCP tool asks a person (`accept` with its fields, `decline`,
    `cancel`); the tool's call goes on with it. The answer is the status after it."""
    return await service.answer(client, execution_id, body)


@router.post("/dag-executions/{execution_id}/budget")
async def raise_budget(execution_id: ExecutionId, request: BudgetRaise, client: TemporalDep) -> DagStatus:
    """Set a larger token budget, above the tokens used so far (else 409); an execution paused at
    its budget (`on_budget: "ask"`) goes on. The answer is the status after the raise."""
    return await service.raise_budget(client, execution_id, request)


@router.post("/dag-executions/{execution_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel(execution_id: ExecutionId, client: TemporalDep) -> dict[str, str]:
    """Request cancellation; running nodes are cancelled and the execution closes cancelled."""
    await service.cancel(client, execution_id)
    return {"id": execution_id, "status": "cancelling"}


@router.post(
    "/resume-dag/{execution_id}",
    response_model=DagStatus | Started,
    responses={201: {"model": Started, "description": "a new execution reusing succeeded nodes"}},
)
async def resume_dag(
    execution_id: ExecutionId,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    body: ResumeRequest | None = None,
) -> JSONResponse:
    """Resume: a suspended execution gets the resume update (`{node_id, action, input}`) → 200
    with its status; a failed or cancelled one is rerun as a new execution that reuses every
    succeeded node's output → 201 with the new execution."""
    try:
        created, answer = await dag_resume.resume(session, client, settings, execution_id, body)
    except SpecInvalid as exc:
        raise _spec_invalid(exc) from None
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse(jsonable_encoder(answer), status_code=code)


@router.post("/dag-executions/{execution_id}/fork", status_code=status.HTTP_201_CREATED)
async def fork_execution(
    execution_id: ExecutionId,
    body: ForkRequest,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> Started:
    """Fork a running or closed execution: a new one reruns `from_node` and everything downstream
    of it with `patch` applied (`{node_id: {prompt, input, agent, model, temperature}}`) and reuses
    every other node's output that succeeded in the origin. 422 names a patch that cannot apply
    (a node not rerun, a field of the other node kind) or lists the patched spec's problems."""
    try:
        return await dag_fork.fork(session, client, settings, execution_id, body)
    except SpecInvalid as exc:
        raise _spec_invalid(exc) from None


def _spec_invalid(exc: SpecInvalid) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        {"message": "the DAG spec is invalid", "problems": exc.problems},
    )
