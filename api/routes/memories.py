"""Agent memories: what agents stored with `remember`, listed, added and deleted by people."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from api.deps import IdPath, PageDep, SessionDep
from contracts.agents import AgentName
from core.models.memory import MemoryCreate, MemoryPublic
from services.agents import require_agent_name
from storage import memories as service

router = APIRouter(prefix="/api/v1", tags=["memories"])

AgentNamePath = Annotated[AgentName, Path()]


@router.get("/agents/{name}/memories")
async def list_memories(
    name: AgentNamePath,
    session: SessionDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=500)] = None,
) -> list[MemoryPublic]:
    """An agent's memories, newest first; `?q=` searches them, best match first."""
    if q:
        rows = await service.search_memories(session, agent_name=name, query=q, limit=page.limit)
    else:
        rows = await service.list_memories(session, agent_name=name, limit=page.limit, offset=page.offset)
    return [MemoryPublic.model_validate(m) for m in rows]


@router.post("/agents/{name}/memories", status_code=status.HTTP_201_CREATED)
async def add_memory(name: AgentNamePath, data: MemoryCreate, session: SessionDep) -> MemoryPublic:
    """Store a memory for an agent name that exists (404 otherwise)."""
    await require_agent_name(session, name)
    memory = await service.add_memory(session, agent_name=name, content=data.content, tags=data.tags)
    return MemoryPublic.model_validate(memory)


@router.delete("/memories/{memory_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_memory(memory_id: IdPath, session: SessionDep) -> None:
    """Delete one memory."""
    await service.delete_memory(session, memory_id)
