"""`GET /api/v1/tools`: every registered tool with its JSON input schema."""

import httpx

from contracts.tools import BUILTIN_TOOLS


async def test_lists_every_tool_with_input_schema(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/tools")
    assert response.status_code == 200, response.text
    tools = {t["name"]: t for t in response.json() if t["server"] is None}  # MCP servers' aside
    assert set(tools) == set(BUILTIN_TOOLS)
    http = tools["http_request"]
    assert http["description"]
    assert http["local"] is False
    assert http["timeout_s"] == 60
    assert http["input_schema"]["required"] == ["url"]
    assert {"method", "url", "headers", "body"} <= set(http["input_schema"]["properties"])
    assert tools["noop"]["local"] is True


async def test_name_filter_returns_only_that_tool(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/tools", params={"name": "calculator"})
    assert response.status_code == 200
    [tool] = response.json()
    assert tool["name"] == "calculator"
    assert tool["input_schema"]["properties"]["expression"]["type"] == "string"
    assert (await api.get("/api/v1/tools", params={"name": "no-such-tool"})).json() == []


async def test_tools_need_the_token(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/api/v1/tools")
    assert response.status_code == 401
    assert "detail" in response.json()
