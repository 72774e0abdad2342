"""The tool registry: what DAG nodes and agents can call, with each tool's input schema."""

from typing import Annotated

from fastapi import APIRouter, Query

from activities.tools.registry import describe_tools
from contracts.tools import ToolDescription

router = APIRouter(prefix="/api/v1/tools", tags=["tools"])


@router.get("")
async def list_tools(
    name: Annotated[str | None, Query(max_length=100)] = None,
) -> list[ToolDescription]:
    """Every registered tool (or the one named) with its JSON input schema."""
    return describe_tools(name)
