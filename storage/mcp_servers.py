"""Registered MCP servers in the database: their tools, and the connection settings the worker
decrypts to reach one. Used by the API's service (register, list) and by the activities (pin
and call); every function takes an open session."""

import json
from typing import Any

from mcp_types import Tool
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.mcp import McpTool, McpToolAnnotations, split_tool_name, tool_name, usable_name
from core.crypto import decrypt
from core.mcp_client import McpConnection
from core.models.mcp_server import McpServer
from core.settings import Settings


def listed(server: McpServer, tools: list[Tool]) -> tuple[list[McpTool], list[str]]:
    """A server's listed tools as goalflow tools (what the row stores: the server's id, approval
    setting and timeout are applied when they are read, `McpServer.listed_tools`), and the names
    it cannot offer a model."""
    usable: list[McpTool] = []
    skipped: list[str] = []
    for tool in tools:
        if not usable_name(server.name, tool.name):
            skipped.append(tool.name[:200])
            continue
        hints = tool.annotations.model_dump(exclude_none=True) if tool.annotations else {}
        usable.append(
            McpTool(
                name=tool_name(server.name, tool.name),
                tool=tool.name,
                server=server.name,
                server_id=server.id or 0,
                description=(tool.description or tool.title or "")[:2000],
                input_schema=dict(tool.input_schema),
                annotations=McpToolAnnotations.model_validate(hints),  # the spec's defaults for the rest
            )
        )
    return usable, skipped


def connection(settings: Settings, server: McpServer) -> McpConnection:
    """The server's connection settings, secrets decrypted (CryptoError when they cannot be)."""
    env: dict[str, str] = json.loads(decrypt(settings, server.encrypted_env)) if server.encrypted_env else {}
    headers: dict[str, str] = (
        json.loads(decrypt(settings, server.encrypted_headers)) if server.encrypted_headers else {}
    )
    return McpConnection(
        transport=server.transport,
        command=server.command,
        args=tuple(server.args),
        cwd=server.cwd,
        url=server.url,
        env=env,
        headers=headers,
    )


async def all_servers(session: AsyncSession) -> list[McpServer]:
    """Every registered server, by id."""
    return list((await session.exec(select(McpServer).order_by(col(McpServer.id)))).all())


async def all_tools(session: AsyncSession) -> list[McpTool]:
    """Every tool of every registered server, by name."""
    tools = [tool for server in await all_servers(session) for tool in server.listed_tools()]
    return sorted(tools, key=lambda tool: tool.name)


async def find_tools(session: AsyncSession, names: list[str]) -> tuple[dict[str, McpTool], dict[str, str]]:
    """The named MCP tools as their servers list them now, and why each missing one is missing."""
    wanted = {split_tool_name(name)[0] for name in names}
    rows = (await session.exec(select(McpServer).where(col(McpServer.name).in_(wanted)))).all()
    servers = {row.name: row for row in rows}
    found: dict[str, McpTool] = {}
    missing: dict[str, str] = {}
    for name in names:
        server_name, tool = split_tool_name(name)
        server = servers.get(server_name)
        if server is None:
            missing[name] = f"no MCP server named {server_name!r} is registered"
            continue
        match = next((t for t in server.listed_tools() if t.tool == tool), None)
        if match is None:
            missing[name] = f"MCP server {server_name!r} no longer lists a tool {tool!r}"
        else:
            found[name] = match
    return found, missing


def tool_schemas(tools: list[McpTool]) -> dict[str, dict[str, Any]]:
    """Name → input schema, as DAG validation takes them."""
    return {tool.name: tool.input_schema for tool in tools}
