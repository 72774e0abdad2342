"""The planning catalog: what a planned DAG may use, read where I/O is allowed."""

from sqlmodel import col, select
from temporalio import activity

from activities.tools.registry import describe_tools
from contracts.planning import CatalogAgent, CatalogTool, PlanningCatalog
from core.db import session_scope
from core.models import Agent, Provider
from core.settings import get_settings
from storage.mcp_servers import all_tools

DESCRIPTION_CHARS = 300


def _summary(system_prompt: str) -> str:
    """An agent has no description field; the start of its system prompt says what it does."""
    text = " ".join(system_prompt.split())
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"


@activity.defn
async def load_planning_catalog() -> PlanningCatalog:
    """Every registered tool with its input schema, every agent with an active version, and each
    provider's kind (the planner answers in the style its provider supports)."""
    async with session_scope(get_settings()) as session:
        rows = (await session.exec(select(Agent).where(col(Agent.is_active)).order_by(col(Agent.name)))).all()
        kinds = (await session.exec(select(Provider.id, Provider.kind))).all()
        mcp = await all_tools(session)
    tools = [
        CatalogTool(name=t.name, description=t.description, input_schema=t.input_schema)
        for t in sorted(describe_tools(), key=lambda t: t.name)
    ] + [
        # The registered MCP servers' tools (`<server>__<tool>`): a plan may use them like any tool.
        CatalogTool(name=t.name, description=t.description[:DESCRIPTION_CHARS], input_schema=t.input_schema)
        for t in mcp
    ]
    agents = [CatalogAgent(name=a.name, description=_summary(a.system_prompt)) for a in rows]
    return PlanningCatalog(
        tools=tools,
        agents=agents,
        provider_kinds={int(pid): str(kind) for pid, kind in kinds if pid is not None},
    )
