"""MCP servers through HTTP: registering real servers (the PyPI reference `mcp-server-time` and
`mcp-server-git` over stdio, our own Streamable HTTP server), their tools among goalflow's,
secrets that never come back, refusals that store nothing, and deletes refused while in use."""

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from core.crypto import new_key
from core.db import session_scope
from core.models import McpServer
from core.settings import Settings
from services.providers import rotate_keys
from storage.mcp_servers import connection
from tests.api.mcp_helpers import SERVERS, register, server_name, time_server
from tests.fakes.mcp_server import NotesServer, start, url


def keys(settings: Settings) -> str:
    assert settings.encryption_keys is not None
    return settings.encryption_keys.get_secret_value()


TOKEN = "X-Notes-Token"


@pytest.fixture(scope="module")
def notes() -> Iterator[NotesServer]:
    fake = NotesServer(required_header=(TOKEN, "notes-secret-4711"))
    server = start(fake)
    yield fake
    server.should_exit = True


async def test_stdio_server_registers_with_its_tools_and_secrets_stay_hidden(
    api: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    name = server_name("time")
    secret = "tz-secret-value-9876"
    body = await register(api, time_server(name, env={"TIME_TOKEN": secret}))
    tools = {tool["name"]: tool for tool in body["tools"]}
    assert set(tools) == {f"{name}__get_current_time", f"{name}__convert_time"}
    listed = tools[f"{name}__get_current_time"]
    assert listed["annotations"]["read_only_hint"] is True
    assert listed["needs_approval"] is False
    assert "timezone" in listed["input_schema"]["properties"]
    assert body["env"] == {"TIME_TOKEN": "…9876"}
    fetched = (await api.get(f"{SERVERS}/{body['id']}")).json()
    assert fetched == body
    listing = (await api.get(SERVERS, params={"limit": 500})).json()
    assert body in listing
    catalog = (await api.get("/api/v1/tools")).json()
    mine = [t for t in catalog if t.get("server") == name]
    assert {t["name"] for t in mine} == set(tools)
    assert any(t["name"] == "calculator" for t in catalog)
    one = (await api.get("/api/v1/tools", params={"name": f"{name}__convert_time"})).json()
    assert [t["name"] for t in one] == [f"{name}__convert_time"]
    for text in (str(body), str(listing), str(catalog), caplog.text):
        assert secret not in text
    async with session_scope(settings) as session:
        row = (await session.exec(select(McpServer).where(McpServer.name == name))).one()
    assert row.encrypted_env is not None and secret not in row.encrypted_env
    # `make rotate-keys` re-encrypts them with the newest key, and they still open.
    fresh = new_key()
    newer = settings.model_copy(update={"encryption_keys": SecretStr(f"{fresh},{keys(settings)}")})
    async with session_scope(newer) as session:
        await rotate_keys(session, newer)
        rotated = (await session.exec(select(McpServer).where(McpServer.name == name))).one()
    assert rotated.encrypted_env != row.encrypted_env
    assert connection(newer, rotated).env == {"TIME_TOKEN": secret}
    async with session_scope(settings) as session:  # back under the session's key alone
        back = SecretStr(f"{keys(settings)},{fresh}")
        await rotate_keys(session, settings.model_copy(update={"encryption_keys": back}))


async def test_git_server_marks_destructive_tools_for_approval(api: httpx.AsyncClient) -> None:
    name = server_name("git")
    body = await register(
        api, {"name": name, "transport": "stdio", "command": sys.executable, "args": ["-m", "mcp_server_git"]}
    )
    tools = {tool["tool"]: tool for tool in body["tools"]}
    assert tools["git_reset"]["needs_approval"] is True  # destructiveHint
    assert tools["git_status"]["needs_approval"] is False  # read-only
    assert tools["git_commit"]["needs_approval"] is False  # says it is not destructive
    always = (await api.patch(f"{SERVERS}/{body['id']}", json={"approval": "always"})).json()
    assert all(tool["needs_approval"] for tool in always["tools"])
    never = (await api.patch(f"{SERVERS}/{body['id']}", json={"approval": "never"})).json()
    assert not any(tool["needs_approval"] for tool in never["tools"])


async def test_http_server_with_header_secret(api: httpx.AsyncClient, notes: NotesServer) -> None:
    name = server_name("notes")
    refused = await api.post(
        SERVERS, json={"name": name, "transport": "http", "url": url(notes), "headers": {TOKEN: "wrong"}}
    )
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"] == "McpServerUnreachable"
    assert "wrong" not in refused.text
    body = await register(
        api,
        {"name": name, "transport": "http", "url": url(notes), "headers": {TOKEN: "notes-secret-4711"}},
    )
    assert body["headers"] == {"X-Notes-Token": "…4711"}
    assert {t["tool"] for t in body["tools"]} >= {"lookup", "append_note", "delete_note", "count_to"}
    assert "notes-secret-4711" not in str(body)
    refreshed = await api.post(f"{SERVERS}/{body['id']}/refresh")
    assert refreshed.status_code == 200, refreshed.text


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"transport": "stdio", "command": "/nonexistent/mcp-server"}, 502, "No such file"),
        ({"transport": "stdio", "command": sys.executable, "args": ["-c", "print(1)"]}, 502, "initialized"),
        ({"transport": "http", "url": "http://127.0.0.1:9/mcp"}, 502, "could not be reached"),
    ],
)
async def test_unreachable_server_is_refused_and_nothing_stored(
    api: httpx.AsyncClient, settings: Settings, body: dict[str, Any], status: int, says: str
) -> None:
    name = server_name("bad")
    response = await api.post(SERVERS, json={"name": name, **body})
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    async with session_scope(settings) as session:
        assert (await session.exec(select(McpServer).where(McpServer.name == name))).first() is None


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Bad Name", "transport": "stdio", "command": "x"},
        {"name": "a__b", "transport": "stdio", "command": "x"},
        {"name": "x" * 40, "transport": "stdio", "command": "x"},
        {"name": "ok", "transport": "stdio"},
        {"name": "ok", "transport": "http"},
        {"name": "ok", "transport": "http", "url": "ftp://x"},
        {"name": "ok", "transport": "stdio", "command": "x", "headers": {"A": "b"}},
        {"name": "ok", "transport": "stdio", "command": "x", "env": {"BAD NAME": "v"}},
        {"name": "ok", "transport": "stdio", "command": "x", "approval": "sometimes"},
        {"name": "ok", "transport": "carrier-pigeon", "command": "x"},
    ],
)
async def test_bad_registrations_are_422(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.post(SERVERS, json=body)
    assert response.status_code == 422, response.text


async def test_duplicate_name_is_409(api: httpx.AsyncClient) -> None:
    name = server_name("dup")
    await register(api, time_server(name))
    again = await api.post(SERVERS, json=time_server(name))
    assert again.status_code == 409, again.text


def now_node(tool: str) -> dict[str, Any]:
    return {"id": "now", "tool": tool, "input": {"timezone": "UTC"}}


async def test_delete_refused_while_a_dag_or_agent_uses_a_tool(api: httpx.AsyncClient, fake_llm: Any) -> None:
    from tests.helpers import make_agent, make_provider

    name = server_name("used")
    server = await register(api, time_server(name))
    tool = f"{name}__get_current_time"
    dag = await api.post(
        "/api/v1/dags",
        json={
            "spec": {"name": "uses-mcp", "nodes": [{"id": "now", "tool": tool, "input": {"timezone": "Z"}}]}
        },
    )
    assert dag.status_code == 201, dag.text
    refused = await api.delete(f"{SERVERS}/{server['id']}")
    assert refused.status_code == 409, refused.text
    assert "now" in refused.json()["detail"] and tool in refused.json()["detail"]
    assert (await api.delete(f"/api/v1/dags/{dag.json()['id']}")).status_code == 204

    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool])
    refused = await api.delete(f"{SERVERS}/{server['id']}")
    assert refused.status_code == 409 and agent["name"] in refused.json()["detail"]
    without = await api.patch(f"/api/v1/agents/{agent['id']}", json={"tools": ["calculator"]})
    assert without.status_code == 200 and without.json()["is_active"], without.text
    assert (await api.delete(f"{SERVERS}/{server['id']}")).status_code == 204
    assert (await api.get(f"{SERVERS}/{server['id']}")).status_code == 404


async def test_dag_input_is_checked_against_the_tools_schema(api: httpx.AsyncClient) -> None:
    name = server_name("schema")
    await register(api, time_server(name))
    response = await api.post(
        "/api/v1/dags",
        json={
            "spec": {
                "name": "bad-input",
                "nodes": [{"id": "conv", "tool": f"{name}__convert_time", "input": {"time": "12:00"}}],
            }
        },
    )
    assert response.status_code == 422, response.text
    assert "source_timezone" in response.text
    unknown = await api.post(
        "/api/v1/dags",
        json={"spec": {"name": "unknown", "nodes": [{"id": "n", "tool": f"{name}__nope", "input": {}}]}},
    )
    assert unknown.status_code == 422 and f"{name}__nope" in unknown.text


async def test_agent_versions_may_list_mcp_tools(api: httpx.AsyncClient, fake_llm: Any) -> None:
    from tests.helpers import make_agent, make_provider

    name = server_name("agent")
    await register(api, time_server(name))
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[f"{name}__get_current_time", "calculator"])
    assert agent["tools"] == [f"{name}__get_current_time", "calculator"]
    bad = await api.post(
        "/api/v1/agents",
        json={
            "name": f"a-{name}",
            "provider_id": provider["id"],
            "model": "m",
            "system_prompt": "x",
            "tools": [f"{name}__missing"],
        },
    )
    assert bad.status_code == 422 and f"{name}__missing" in bad.text


async def test_a_failing_stdio_server_says_why_without_its_secrets(api: httpx.AsyncClient) -> None:
    secret = "stderr-secret-2468"
    script = "import os, sys; print('refusing token', os.environ['NOTES_TOKEN'], file=sys.stderr); exit(3)"
    response = await api.post(
        SERVERS,
        json={
            "name": server_name("loud"),
            "transport": "stdio",
            "command": sys.executable,
            "args": ["-c", script],
            "env": {"NOTES_TOKEN": secret},
        },
    )
    assert response.status_code == 502, response.text
    detail = response.json()["detail"]
    assert "the server said: refusing token ***" in detail, detail
    assert secret not in response.text
