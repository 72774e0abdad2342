"""Registering MCP servers: every change is checked against the server itself before it is kept.

A create, a PATCH and a refresh start (or reach) the server, initialize and list its tools first;
a server that cannot be reached, fails its handshake or lists no tool a model can call is
refused and nothing is stored (502 naming why, 422 for "no usable tool"). The check runs here, in
the API process, and not as an activity: the env and headers it needs are secrets that must never
enter a Temporal payload, and nothing is stored before the check passes.
"""

import json

from pydantic import SecretStr
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.mcp import MCP_SEPARATOR, McpTool
from core.crypto import encrypt
from core.errors import Conflict, Invalid, NotFound, Upstream
from core.mcp_client import McpUnavailable, list_tools_once
from core.models import Agent, Dag
from core.models.mcp_server import McpServer, McpServerCreate, McpServerUpdate, check_connection
from core.settings import Settings
from storage import mcp_servers as store

MCP_UNREACHABLE = "McpServerUnreachable"


def _hint(value: str) -> str:
    return f"…{value[-4:]}" if len(value) > 8 else "…"


def _set_secrets(
    settings: Settings,
    server: McpServer,
    *,
    env: dict[str, SecretStr] | None,
    headers: dict[str, SecretStr] | None,
) -> None:
    hints = dict(server.secret_hints)
    for prefix, values, attribute in (
        ("env:", env, "encrypted_env"),
        ("header:", headers, "encrypted_headers"),
    ):
        if values is None:
            continue
        plain = {key: value.get_secret_value() for key, value in values.items()}
        setattr(server, attribute, encrypt(settings, json.dumps(plain)) if plain else None)
        hints = {k: v for k, v in hints.items() if not k.startswith(prefix)}
        hints.update({f"{prefix}{key}": _hint(value) for key, value in plain.items()})
    server.secret_hints = hints


async def _check(settings: Settings, server: McpServer) -> None:
    """List the server's tools into the row, or refuse (nothing is written by the caller)."""
    try:
        tools = await list_tools_once(store.connection(settings, server))
    except McpUnavailable as exc:
        raise Upstream(
            f"MCP server {server.name!r} could not be reached or initialized: {exc}", kind=MCP_UNREACHABLE
        ) from None
    usable, skipped = store.listed(server, tools)
    if not usable:
        listed = f" (listed but unusable names: {', '.join(skipped[:10])})" if skipped else ""
        raise Invalid(f"MCP server {server.name!r} lists no tool goalflow can offer{listed}")
    server.tools = [tool.model_dump(mode="json") for tool in usable]
    server.skipped_tools = skipped
    server.last_error = None


async def _unique(session: AsyncSession, name: str, *, exclude_id: int | None = None) -> None:
    row = (await session.exec(select(McpServer).where(McpServer.name == name))).first()
    if row is not None and row.id != exclude_id:
        raise Conflict(f"an MCP server named {name!r} already exists")


async def get_server(session: AsyncSession, server_id: int) -> McpServer:
    server = await session.get(McpServer, server_id)
    if server is None:
        raise NotFound(f"MCP server {server_id} not found")
    return server


async def list_servers(session: AsyncSession, *, limit: int, offset: int) -> list[McpServer]:
    query = select(McpServer).order_by(col(McpServer.id)).limit(limit).offset(offset)
    return list((await session.exec(query)).all())


async def create_server(session: AsyncSession, settings: Settings, data: McpServerCreate) -> McpServer:
    """Check the server (start it, list its tools), then store it with its secrets encrypted."""
    await _unique(session, data.name)
    server = McpServer.model_validate(data, update={"env": None, "headers": None})
    _set_secrets(settings, server, env=data.env, headers=data.headers)
    await _check(settings, server)
    session.add(server)
    await session.commit()
    await session.refresh(server)
    return server


async def update_server(
    session: AsyncSession, settings: Settings, server_id: int, data: McpServerUpdate
) -> McpServer:
    """Apply the changes, list the server again with them, and keep them only if that works."""
    server = await get_server(session, server_id)
    changes = data.model_dump(exclude_unset=True, exclude={"env", "headers"})
    nulled = sorted(
        k for k in ("name", "approval", "timeout_s", "args") if k in changes and changes[k] is None
    )
    if nulled:
        raise Invalid(f"{', '.join(nulled)} cannot be null")
    if "name" in changes and changes["name"] != server.name:
        await _unique(session, changes["name"], exclude_id=server_id)
        used = await users(session, server)
        if used:
            raise Conflict(f"MCP server {server.name!r} cannot be renamed while in use: {'; '.join(used)}")
    server.sqlmodel_update(changes)
    try:  # the patch alone is valid; the server it produces must be too
        check_connection(server.transport, server.command, server.url)
    except ValueError as exc:
        await session.rollback()
        raise Invalid(str(exc)) from None
    _set_secrets(
        settings,
        server,
        env=data.env if "env" in data.model_fields_set else None,
        headers=data.headers if "headers" in data.model_fields_set else None,
    )
    try:
        await _check(settings, server)
    except Exception:
        await session.rollback()
        raise
    session.add(server)
    await session.commit()
    await session.refresh(server)
    return server


async def refresh_server(session: AsyncSession, settings: Settings, server_id: int) -> McpServer:
    """List the server's tools again; an unreachable server keeps its last list and records why."""
    server = await get_server(session, server_id)
    try:
        await _check(settings, server)
    except (Upstream, Invalid) as exc:
        await session.rollback()
        server = await get_server(session, server_id)
        server.last_error = str(exc)[:1000]
        session.add(server)
        await session.commit()
        raise
    session.add(server)
    await session.commit()
    await session.refresh(server)
    return server


async def users(session: AsyncSession, server: McpServer) -> list[str]:
    """What uses one of the server's tools: stored DAGs (their nodes) and active agent versions."""
    prefix = f"{server.name}{MCP_SEPARATOR}"
    found: list[str] = []
    for dag in (await session.exec(select(Dag).order_by(col(Dag.id)))).all():
        nodes = [n for n in dag.spec.get("nodes", []) if str(n.get("tool") or "").startswith(prefix)]
        if nodes:
            used = ", ".join(f"{n.get('id')} ({n.get('tool')})" for n in nodes[:5])
            found.append(f"DAG {dag.id} {dag.name!r} nodes {used}")
    agents = (await session.exec(select(Agent).where(col(Agent.is_active)).order_by(col(Agent.name)))).all()
    for agent in agents:
        tools = [t for t in agent.tools if t.startswith(prefix)]
        if tools:
            found.append(f"agent {agent.name!r} v{agent.version} tools {', '.join(tools[:5])}")
    return found


async def delete_server(session: AsyncSession, server_id: int) -> None:
    """Delete a server none of whose tools a stored DAG or an active agent version uses."""
    server = await get_server(session, server_id)
    used = await users(session, server)
    if used:
        raise Conflict(f"MCP server {server.name!r} is in use: {'; '.join(used)}")
    await session.delete(server)
    await session.commit()


async def all_tools(session: AsyncSession) -> list[McpTool]:
    """Every registered MCP tool (for `GET /tools`, DAG validation and agent versions)."""
    return await store.all_tools(session)
