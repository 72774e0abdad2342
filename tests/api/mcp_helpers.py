"""What the MCP tests share: a unique server name, the bodies that register a server, the
model script of an agent that calls one MCP tool."""

import json
import sys
import uuid
from typing import Any

import httpx

from tests.fakes.mcp_server import NotesServer, url

SERVERS = "/api/v1/mcp-servers"


def server_name(prefix: str = "s") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def time_server(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
        **extra,
    }


async def register(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(SERVERS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def http_server(name: str, fake: NotesServer, **extra: Any) -> dict[str, Any]:
    return {"name": name, "transport": "http", "url": url(fake), **extra}


async def notes_server(api: httpx.AsyncClient, fake: NotesServer, **extra: Any) -> str:
    name = server_name("notes")
    await register(api, http_server(name, fake, **extra))
    return name


def node(node_id: str, tool: str, **arguments: Any) -> dict[str, Any]:
    return {"id": node_id, "tool": tool, "input": arguments}


def agent_script(tool: str, arguments: dict[str, Any]) -> Any:
    """A model that calls `tool` once, then answers with what the tool returned."""

    def handle(body: dict[str, Any]) -> dict[str, Any]:
        results = [m for m in body["messages"] if m["role"] == "tool"]
        if results:
            return {"role": "assistant", "content": f"tool said: {results[-1]['content']}"}
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": tool, "arguments": json.dumps(arguments)},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    return handle
