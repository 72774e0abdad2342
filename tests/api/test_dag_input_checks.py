"""Tool inputs that could only fail at run time are refused when the DAG is stored: artifact names
that leave the artifacts directory, URLs that are not http(s)."""

from typing import Any

import httpx
import pytest

from tests.conftest import unique


@pytest.mark.parametrize(
    ("tool", "tool_input", "field"),
    [
        ("write_artifact", {"name": "../x.md", "content": "x"}, "name"),
        ("write_artifact", {"name": "/etc/cron.d/x", "content": "x"}, "name"),
        ("write_artifact", {"name": "a\x00b.md", "content": "x"}, "name"),
        ("write_artifact", {"name": "a..b", "content": "x"}, "name"),
        ("read_artifact", {"name": "..\\secrets"}, "name"),
        ("http_request", {"url": "file:///etc/passwd"}, "url"),
        ("http_request", {"url": "gopher://example.com/"}, "url"),
    ],
)
async def test_bad_tool_input_is_422_naming_the_node_and_stores_nothing(
    api: httpx.AsyncClient, tool: str, tool_input: dict[str, Any], field: str
) -> None:
    name = unique("bad-input")
    spec = {"name": name, "nodes": [{"id": "n1", "tool": tool, "input": tool_input}]}
    response = await api.post("/api/v1/dags", json={"spec": spec})
    assert response.status_code == 422, response.text
    detail = str(response.json()["detail"])
    # A NUL character is refused at the door (api/json_guard.py), naming the same field by path.
    named = "node 'n1'" in detail and f"input['{field}']" in detail
    assert named or f"'nodes', 0, 'input', '{field}']" in detail, detail
    listed = await api.get("/api/v1/dags", params={"name": name})
    assert listed.json() == []


async def test_good_names_and_templated_ones_are_accepted(api: httpx.AsyncClient) -> None:
    spec = {
        "name": unique("good-input"),
        "params": {"week": "2026-W47"},
        "nodes": [
            {"id": "a", "tool": "write_artifact", "input": {"name": "report v2.final.md", "content": "x"}},
            {"id": "b", "tool": "write_artifact", "input": {"name": "r-{{params.week}}.md", "content": "y"}},
            {"id": "c", "tool": "http_request", "input": {"url": "HTTPS://example.com/x"}},
        ],
    }
    response = await api.post("/api/v1/dags", json={"spec": spec})
    assert response.status_code == 201, response.text


async def test_execute_dag_refuses_undeclared_and_oversized_params_and_starts_nothing(
    api: httpx.AsyncClient,
) -> None:
    spec = {"name": unique("params"), "params": {"x": "1"}, "nodes": [{"id": "n", "tool": "noop"}]}
    dag = (await api.post("/api/v1/dags", json={"spec": spec})).json()
    typo = await api.post("/api/v1/execute-dag", json={"dag_id": dag["id"], "params": {"y": 2}})
    assert typo.status_code == 422, typo.text
    assert "not declared by the DAG: y" in str(typo.json()["detail"])
    big = await api.post("/api/v1/execute-dag", json={"dag_id": dag["id"], "params": {"x": "a" * 3_000_000}})
    assert big.status_code == 422, big.text
    assert "params too large" in str(big.json()["detail"])
    huge = await api.post(
        "/api/v1/execute-dag",
        content=b'{"dag_id": 1, "params": {"x": "' + b"a" * (20 * 1024 * 1024) + b'"}}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413, huge.text
    assert "request body larger than" in huge.json()["detail"]
    executions = await api.get(f"/api/v1/dags/{dag['id']}/executions")
    assert executions.json() == []
