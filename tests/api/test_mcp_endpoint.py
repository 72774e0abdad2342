"""`/api/v1/mcp`: goalflow's tools over Streamable HTTP, driven by the `mcp` SDK's own client
against the API served by uvicorn, on the session's Temporal, worker, database and fake model."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
import pytest_asyncio
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from api import mcp_endpoint
from api.main import create_app
from api.mcp_endpoint import MCP_PATH
from core.settings import Settings
from tests.api.dag_helpers import GATED, make_dag
from tests.api.goal_helpers import SIMPLE_PLAN, make_goal_agent
from tests.api.sse import serving
from tests.fakes.openai_server import FakeOpenAI

TOOLS = {"start_goal_run", "get_run", "run_dag", "get_dag_execution", "approve_node", "reject_node"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}


@pytest_asyncio.fixture(scope="module")
async def mcp_url(settings: Settings, worker: None) -> AsyncIterator[str]:
    """The endpoint of the API served for real (the MCP client needs a real HTTP server)."""
    async with serving(settings) as base:
        yield base + MCP_PATH


@asynccontextmanager
async def connected(url: str, token: str) -> AsyncIterator[Client]:
    """An MCP client on `url` sending `Authorization: Bearer <token>` with every request."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


McpOpener = Callable[[], AbstractAsyncContextManager[Client]]


@pytest.fixture
def open_mcp(mcp_url: str, settings: Settings) -> McpOpener:
    """Opens a client with the session's token. Inside the test, not as a fixture: the client's
    task group must close in the task that opened it, and pytest-asyncio tears down in another."""
    assert settings.api_token is not None
    token = settings.api_token.get_secret_value()
    return lambda: connected(mcp_url, token)


def text_of(result: CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, TextContent)
    return block.text


async def call(mcp: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; its answer, as the JSON text clients read."""
    result = await mcp.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    body: dict[str, Any] = json.loads(text_of(result))
    assert result.structured_content == body
    return body


async def poll(
    mcp: Client, tool: str, done: Callable[[dict[str, Any]], bool], *, within_s: float = 60, **arguments: Any
) -> dict[str, Any]:
    """Call a read tool until its answer satisfies `done`."""
    async with asyncio.timeout(within_s):
        while True:
            body = await call(mcp, tool, **arguments)
            if done(body):
                return body
            await asyncio.sleep(0.2)


def node_states(body: dict[str, Any]) -> dict[str, str]:
    return {node["id"]: node["status"] for node in body["nodes"]}


async def test_the_tools_are_listed_each_with_a_one_line_description(open_mcp: McpOpener) -> None:
    async with open_mcp() as mcp:
        listed = (await mcp.list_tools()).tools
    assert {tool.name for tool in listed} == TOOLS
    for tool in listed:
        assert tool.description and "\n" not in tool.description, tool.name
    schemas = {tool.name: tool.input_schema for tool in listed}
    assert schemas["start_goal_run"]["required"] == ["goal"]
    assert schemas["run_dag"]["required"] == ["dag_id"]
    assert set(schemas["approve_node"]["required"]) == {"execution_id", "node_id"}


async def test_a_request_without_the_token_is_refused_401(mcp_url: str, settings: Settings) -> None:
    assert settings.api_token is not None
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        for extra in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic eDp5"}):
            refused = await http.post(mcp_url, json=INITIALIZE, headers={**headers, **extra})
            assert refused.status_code == 401, extra
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json() == {"detail": "missing or invalid bearer token"}
        token = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
        accepted = await http.post(mcp_url, json=INITIALIZE, headers={**headers, **token})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["result"]["serverInfo"]["name"] == "goalflow"
    # The SDK's client fails the same way: no tool listing without the token.
    with pytest.RaisesGroup(MCPError, flatten_subgroups=True):
        async with connected(mcp_url, "not-the-token") as mcp:
            await mcp.list_tools()


async def test_start_goal_run_then_get_run_follows_it_to_its_report(
    open_mcp: McpOpener, api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    objective = "Multiply six by seven and report it."
    async with open_mcp() as mcp:
        started = await call(mcp, "start_goal_run", goal=objective, agent=agent["name"])
        run_id = started["id"]
        run = await poll(mcp, "get_run", lambda body: body["status"] != "running", run_id=run_id)
    assert run_id.startswith(f"goal-{started['goal_id']}-")
    assert started["status"] == "running"
    goal = (await api.get(f"/api/v1/goals/{started['goal_id']}")).json()
    assert (goal["title"], goal["objective"], goal["agent_name"]) == (objective, objective, agent["name"])

    assert run["status"] == "succeeded", run
    assert [step["id"] for step in run["result"]["steps"]] == ["plan", "calc", "echo", "summary"]
    assert run["result"]["plan"]["name"] == SIMPLE_PLAN["name"]
    [report] = run["result"]["artifacts"]
    assert report.endswith("-report.md")
    # The same answer as the REST route it stands for.
    assert run == (await api.get(f"/api/v1/runs/{run_id}")).json()


def _gate_waits(body: dict[str, Any]) -> bool:
    return node_states(body)["gate"] == "waiting_approval"


def _closed(body: dict[str, Any]) -> bool:
    return body["status"] != "running"


async def test_a_node_waiting_for_approval_is_approved_through_mcp_and_the_dag_succeeds(
    open_mcp: McpOpener, api: httpx.AsyncClient
) -> None:
    dag = await make_dag(api, GATED)
    async with open_mcp() as mcp:
        started = await call(mcp, "run_dag", dag_id=dag["id"])
        execution_id = started["id"]
        waiting = await poll(mcp, "get_dag_execution", _gate_waits, execution_id=execution_id)
        approved = await call(mcp, "approve_node", execution_id=execution_id, node_id="gate", comment="ok")
        done = await poll(mcp, "get_dag_execution", _closed, execution_id=execution_id)
        # Once closed there is nothing to decide: the service's 409, as the tool's error.
        again = await mcp.call_tool("approve_node", {"execution_id": execution_id, "node_id": "gate"})
    assert execution_id.startswith(f"dag-{dag['id']}-") and started["dag_id"] == dag["id"]
    assert waiting["status"] == "running"
    assert node_states(waiting) == {"a": "succeeded", "gate": "waiting_approval", "after": "pending"}
    assert node_states(approved)["gate"] != "waiting_approval"
    assert done["status"] == "succeeded"
    assert node_states(done) == {"a": "succeeded", "gate": "succeeded", "after": "succeeded"}
    assert [node["output"] for node in done["nodes"]] == ["first", "first", "done"]
    assert done == (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
    assert again.is_error and "is closed" in text_of(again)


async def test_a_node_rejected_through_mcp_fails(open_mcp: McpOpener, api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, {**GATED, "on_failure": "fail"})
    async with open_mcp() as mcp:
        execution_id = (await call(mcp, "run_dag", dag_id=dag["id"]))["id"]
        await poll(mcp, "get_dag_execution", _gate_waits, execution_id=execution_id)
        await call(mcp, "reject_node", execution_id=execution_id, node_id="gate", comment="no way")
        done = await poll(mcp, "get_dag_execution", _closed, execution_id=execution_id)
    assert done["status"] == "failed"
    gate = next(node for node in done["nodes"] if node["id"] == "gate")
    assert (gate["status"], gate["error"]) == ("failed", "rejected: no way")


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("get_dag_execution", {"execution_id": "dag-0-nothere"}, "DAG execution dag-0-nothere not found"),
        ("approve_node", {"execution_id": "dag-0-nothere", "node_id": "a"}, "dag-0-nothere not found"),
        ("reject_node", {"execution_id": "dag-0-nothere", "node_id": "a"}, "dag-0-nothere not found"),
        ("get_run", {"run_id": "goal-0-nothere"}, "run goal-0-nothere not found"),
        ("run_dag", {"dag_id": 2**31 - 1}, f"DAG {2**31 - 1} not found"),
        ("get_dag_execution", {"execution_id": "goal-1-abc"}, "should match pattern"),
    ],
)
async def test_unknown_ids_are_error_results_and_the_endpoint_goes_on(
    open_mcp: McpOpener, tool: str, arguments: dict[str, Any], message: str
) -> None:
    async with open_mcp() as mcp:
        result = await mcp.call_tool(tool, arguments)
        listed = (await mcp.list_tools(cache_mode="refresh")).tools
    assert result.is_error
    assert message in text_of(result)
    assert {tool.name for tool in listed} == TOOLS


def test_the_mount_leaves_the_openapi_schema_as_it_was(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings)
    assert any(getattr(route, "path", None) == MCP_PATH for route in app.routes)
    with_mcp = app.openapi()
    monkeypatch.setattr(mcp_endpoint, "mount", lambda app: None)  # its lifespan never runs here
    without = create_app(settings)
    assert not any(getattr(route, "path", None) == MCP_PATH for route in without.routes)
    assert with_mcp == without.openapi()
