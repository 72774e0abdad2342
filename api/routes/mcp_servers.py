"""MCP tool servers: register, list, change, refresh, delete. Every change is checked against
the server (started or reached, initialized, its tools listed) before it is kept; env values and
headers are write-only."""

from typing import Any

from fastapi import APIRouter, status

from api.deps import IdPath, PageDep, SessionDep, SettingsDep
from api.errors import ErrorResponse
from core.models import McpServerCreate, McpServerPublic, McpServerUpdate
from services import mcp_servers as service

router = APIRouter(prefix="/api/v1/mcp-servers", tags=["mcp-servers"])

CHECKED: dict[int | str, dict[str, Any]] = {
    502: {"model": ErrorResponse, "description": "The MCP server could not be reached or initialized"}
}


@router.get("")
async def list_mcp_servers(session: SessionDep, page: PageDep) -> list[McpServerPublic]:
    """Every registered server with the tools it listed, secrets by name only."""
    rows = await service.list_servers(session, limit=page.limit, offset=page.offset)
    return [McpServerPublic.of(s) for s in rows]


@router.post("", status_code=status.HTTP_201_CREATED, responses=CHECKED)
async def create_mcp_server(
    data: McpServerCreate, session: SessionDep, settings: SettingsDep
) -> McpServerPublic:
    """Start or reach the server, list its tools, and store it (502 when it cannot be reached)."""
    return McpServerPublic.of(await service.create_server(session, settings, data))


@router.get("/{server_id}")
async def get_mcp_server(server_id: IdPath, session: SessionDep) -> McpServerPublic:
    """One server."""
    return McpServerPublic.of(await service.get_server(session, server_id))


@router.patch("/{server_id}", responses=CHECKED)
async def update_mcp_server(
    server_id: IdPath, data: McpServerUpdate, session: SessionDep, settings: SettingsDep
) -> McpServerPublic:
    """Change fields (`env`/`headers` replace the stored ones); the server is listed again first."""
    return McpServerPublic.of(await service.update_server(session, settings, server_id, data))


@router.post("/{server_id}/refresh", responses=CHECKED)
async def refresh_mcp_server(
    server_id: IdPath, session: SessionDep, settings: SettingsDep
) -> McpServerPublic:
    """List the server's tools again (a server that added or dropped tools)."""
    return McpServerPublic.of(await service.refresh_server(session, settings, server_id))


@router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_mcp_server(server_id: IdPath, session: SessionDep) -> None:
    """Delete a server that no stored DAG or active agent version uses (409 naming them)."""
    await service.delete_server(session, server_id)
