"""Versioned agents: versions, activation, resolution and the test run."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.accepted import WAITING_RESPONSES, accepted
from api.deps import IdPath, PageDep, SessionDep, SettingsDep, TemporalDep
from contracts.agents import AgentName, AgentTestResult
from core.models import AgentCreate, AgentPublic, AgentUpdate
from services import agents as service
from services.waiting import StillRunning

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


class AgentTestRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=100_000)


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
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> AgentTestResponse | JSONResponse:
    """Run a prompt through this version as a workflow and answer output, usage and timing."""
    workflow_id, result = await service.test_agent(session, client, settings, agent_id, body.prompt)
    if isinstance(result, StillRunning):
        return accepted(result, settings)
    return AgentTestResponse(**result.model_dump(), workflow_id=workflow_id)
