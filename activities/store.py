"""Database reads and writes that workflows need, as activities."""

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts import errors
from contracts.agents import AgentSnapshot
from contracts.mcp import MCP_TOOL_UNAVAILABLE, is_mcp_tool
from core.db import session_scope
from core.models import Agent
from core.settings import get_settings
from storage.mcp_servers import find_tools


def snapshot_of(agent: Agent) -> AgentSnapshot:
    """The workflow-facing copy of an agent version (without its MCP tools: see `pinned`)."""
    return AgentSnapshot.model_validate(agent, from_attributes=True)


async def pinned(session: AsyncSession, agent: Agent) -> AgentSnapshot:
    """The workflow-facing copy of an agent version with the MCP tools it lists, as their
    servers list them now; a tool that is gone fails the pin with `McpToolUnavailable`."""
    snapshot = snapshot_of(agent)
    names = [name for name in snapshot.tools if is_mcp_tool(name)]
    if not names:
        return snapshot
    found, missing = await find_tools(session, names)
    if missing:
        raise ApplicationError(
            f"agent {agent.name!r} v{agent.version}: "
            + "; ".join(f"{name}: {why}" for name, why in sorted(missing.items())),
            type=MCP_TOOL_UNAVAILABLE,
            non_retryable=True,
        )
    snapshot.mcp_tools = [found[name] for name in names]
    return snapshot


@activity.defn
async def load_agent_snapshot(agent_id: int) -> AgentSnapshot:
    """Pin one agent version by id for a run."""
    async with session_scope(get_settings()) as session:
        agent = await session.get(Agent, agent_id)
        if agent is None:
            raise ApplicationError(
                f"agent {agent_id} does not exist", type=errors.AGENT_NOT_FOUND, non_retryable=True
            )
        return await pinned(session, agent)


async def active_snapshot(name: str) -> AgentSnapshot:
    """The active version of a named agent, for code already running in an activity."""
    return (await resolve_agent_snapshots([name]))[name]


@activity.defn
async def resolve_agent_snapshots(names: list[str]) -> dict[str, AgentSnapshot]:
    """Pin the active version of each named agent, all at once, when a run starts."""
    async with session_scope(get_settings()) as session:
        rows = (
            await session.exec(
                select(Agent).where(Agent.name.in_(names), Agent.is_active)  # type: ignore[attr-defined]
            )
        ).all()
        found = {agent.name: await pinned(session, agent) for agent in rows}
    missing = sorted(set(names) - found.keys())
    if missing:
        raise ApplicationError(
            f"no active version of agent(s): {', '.join(missing)}",
            type=errors.AGENT_NOT_FOUND,
            non_retryable=True,
        )
    return found
