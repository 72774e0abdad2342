"""The tool registry: what DAG nodes and agents can call, with each tool's input schema: the
built-in tools and every tool of the registered MCP servers (`<server>__<tool>`)."""

from typing import Annotated

from fastapi import APIRouter, Query

from activities.tools.registry import describe_tools
from api.deps import SessionDep
from contracts.tools import ToolDescription
from services import mcp_servers

router = APIRouter(prefix="/api/v1/tools", tags=["tools"])


@router.get("")
async def list_tools(
    session: SessionDep,
    name: Annotated[str | None, Query(max_length=100)] = None,
) -> list[ToolDescription]:
    """Every registered tool (or the one named) with its JSON input schema."""
    tools = describe_tools(name)
    for tool in await mcp_servers.all_tools(session):
        if name is None or tool.name == name:
            tools.append(
                ToolDescription(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.input_schema,
                    local=False,
                    timeout_s=tool.timeout_s,
                    server=tool.server,
                    annotations=tool.annotations.model_dump(),
                    needs_approval=tool.needs_approval,
                )
            )
    return tools
