"""`remember` and `recall`: an agent's long-term memory in the memories table.

`remember` stores its memory once per place in a workflow (`activities.idempotency.once`): a
retried activity, or the same call replayed by a retried `run_agent`, returns the memory stored
the first time instead of adding a copy.
"""

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from activities.idempotency import once
from activities.tools.base import ToolError, make_tool
from contracts.tool_inputs import RecallInput, RememberInput
from core.db import session_scope
from core.errors import Invalid
from core.settings import get_settings
from storage import memories


async def remember(args: RememberInput) -> dict[str, Any]:
    async def store(session: AsyncSession) -> dict[str, Any]:
        memory = await memories.add_memory(
            session, agent_name=args.agent, content=args.content, tags=args.tags, commit=False
        )
        return {"id": memory.id, "agent": memory.agent_name, "tags": memory.tags}

    try:
        stored: dict[str, Any] = await once("remember", args.model_dump(), store)
    except Invalid as exc:
        raise ToolError(str(exc)) from None
    return stored


async def recall(args: RecallInput) -> list[dict[str, Any]]:
    async with session_scope(get_settings()) as session:
        found = await memories.search_memories(
            session, agent_name=args.agent, query=args.query, limit=args.limit
        )
    return [
        {"id": m.id, "content": m.content, "tags": m.tags, "created_at": m.created_at.isoformat()}
        for m in found
    ]


REMEMBER = make_tool(
    name="remember",
    description="Store a fact in an agent's long-term memory.",
    input_model=RememberInput,
    impl=remember,
)
RECALL = make_tool(
    name="recall",
    description="Search an agent's long-term memory; best matches first.",
    input_model=RecallInput,
    impl=recall,
)
