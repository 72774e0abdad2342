"""Versioned agents: versions, activation, resolution and the test run."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event
from pydantic import BaseModel, Field
from temporalio.service import RPCError

from api.accepted import WAITING_RESPONSES, accepted
from api.deps import IdPath, PageDep, SessionDep, SettingsDep, TemporalDep
from contracts.agents import AgentName, AgentTestResult
from core.errors import DomainError, Upstream
from core.models import AgentCreate, AgentPublic, AgentUpdate
from services import agents as service
from services.live_output import LiveDelta
from services.realtime import hub_of
from services.temporal_errors import rpc_error
from services.waiting import StillRunning

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


class AgentTestRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=100_000)
    stream: bool = Field(
        default=False,
        description="Answer as SSE: `output_delta` events as the agent writes, then `result` (or `error`)",
    )


class AgentTestResponse(AgentTestResult):
    workflow_id: str


@router.get("")
async def list_agents(
    session: SessionDep,
    page: PageDep,
    name: Annotated[str | None, Query(max_length=63)] = None,
    active: bool | None = None,
) -> list[AgentPublic]:
    """Agent versions, filtered by name and/or active flag."""
    rows = await service.list_agents(session, name=name, active=active, limit=page.limit, offset=page.offset)
    return [AgentPublic.model_validate(a) for a in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_agent(data: AgentCreate, session: SessionDep) -> AgentPublic:
    """Create a version; an existing name gets the next version number."""
    return AgentPublic.model_validate(await service.create_agent(session, data))


@router.get("/resolve/{name}")
async def resolve_agent(name: Annotated[AgentName, Path()], session: SessionDep) -> AgentPublic:
    """The active version of a name."""
    return AgentPublic.model_validate(await service.resolve_agent(session, name))


@router.get("/{agent_id}")
async def get_agent(agent_id: IdPath, session: SessionDep) -> AgentPublic:
    """One agent version."""
    return AgentPublic.model_validate(await service.get_agent(session, agent_id))


@router.patch("/{agent_id}")
async def update_agent(agent_id: IdPath, data: AgentUpdate, session: SessionDep) -> AgentPublic:
    """Change a version's behaviour: answers the next version (active if the edited one was)."""
    return AgentPublic.model_validate(await service.update_agent(session, agent_id, data))


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_agent(agent_id: IdPath, session: SessionDep) -> None:
    """Delete an inactive version (409 for the active one)."""
    await service.delete_agent(session, agent_id)


@router.post("/{agent_id}/activate")
async def activate_agent(agent_id: IdPath, session: SessionDep) -> AgentPublic:
    """Make this the one active version of its name."""
    return AgentPublic.model_validate(await service.activate_agent(session, agent_id))


@router.post("/{agent_id}/test", response_model=AgentTestResponse, responses=WAITING_RESPONSES)
async def test_agent(
    agent_id: IdPath,
    body: AgentTestRequest,
    request: Request,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> AgentTestResponse | JSONResponse | EventSourceResponse:
    """Run a prompt through this version as a workflow and answer output, usage and timing; with
    `stream`, as SSE while the agent writes (see `_test_events`)."""
    if body.stream:
        hub = hub_of(request.app.state)
        workflow_id, items = await service.stream_agent_test(
            session, client, settings, hub, agent_id, body.prompt
        )
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return EventSourceResponse(_pinged(_test_events(workflow_id, items)), headers=headers)
    workflow_id, result = await service.test_agent(session, client, settings, agent_id, body.prompt)
    if isinstance(result, StillRunning):
        return accepted(result, settings)
    return AgentTestResponse(**result.model_dump(), workflow_id=workflow_id)


PING_S = 15.0
"""A keep-alive comment goes out after this long without an event (proxies drop idle streams)."""


def _event(name: str, data: Any) -> bytes:
    text = json.dumps(jsonable_encoder(data), ensure_ascii=False, separators=(",", ":"))
    return format_sse_event(event=name, data_str=text)


async def _test_events(
    workflow_id: str, items: AsyncIterator[LiveDelta | AgentTestResult]
) -> AsyncIterator[bytes]:
    """`output_delta` (`attempt`, `offset` in the text, `text`; a text starting again at offset 0
    is a new try) as the agent writes, then `result` with the body the call answers without
    `stream`, or `error` with the body its error answer has. Errors found before the workflow
    started (404, 503) are answered as without `stream`."""
    try:
        async for item in items:
            if isinstance(item, LiveDelta):
                delta = {"attempt": item.attempt, "offset": item.offset, "text": item.text}
                yield _event("output_delta", delta)
            else:
                yield _event("result", AgentTestResponse(**item.model_dump(), workflow_id=workflow_id))
    except (DomainError, RPCError) as exc:
        error = exc if isinstance(exc, DomainError) else rpc_error(exc, what="the agent test")
        kind = {"error": error.kind} if isinstance(error, Upstream) else {}
        yield _event("error", {"detail": str(error), **kind})


async def _pinged(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`events`, with a keep-alive comment whenever none came for PING_S. FastAPI inserts these
    only for an endpoint that is itself an SSE generator; this route answers JSON or SSE by a field
    of its body, so it returns the response and keeps it alive here."""
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        try:
            async for chunk in events:
                await queue.put(chunk)
        except Exception as exc:  # handed to the reader, raised there
            await queue.put(exc)
        await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(queue.get(), PING_S)
            except TimeoutError:
                yield KEEPALIVE_COMMENT
                continue
            if chunk is None:
                return
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
