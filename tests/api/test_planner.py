"""`POST /create-dag`: the planner agent runs in PlannerWorkflow; invalid plans go back to it."""

import json
from typing import Any

import httpx

from tests.api.dag_helpers import wait_closed
from tests.fakes.openai_server import FakeOpenAI, tool_call
from tests.helpers import make_agent, make_provider
from workflows.planning import PLAN_TOOL

VALID = {
    "name": "sum-numbers",
    "nodes": [
        {"id": "add", "tool": "calculator", "input": {"expression": "{{params.expr}}"}},
        {"id": "echo", "tool": "noop", "input": {"value": "{{nodes.add.output}}"}, "depends_on": ["add"]},
    ],
    "params": {"expr": "2 + 3"},
}
INVALID = {
    "name": "broken",
    "nodes": [
        {"id": "a", "tool": "no_such_tool"},
        {"id": "b", "tool": "calculator", "input": {"expression": "1"}, "depends_on": ["ghost"]},
    ],
}


def submit(spec: dict[str, Any]) -> Any:
    return lambda body: tool_call(PLAN_TOOL, spec)


async def _planner(api: httpx.AsyncClient, fake: FakeOpenAI) -> dict[str, Any]:
    provider = await make_provider(api, fake)
    return await make_agent(api, provider["id"], system_prompt="You plan DAGs.")


def _text_of(body: dict[str, Any]) -> str:
    return json.dumps(body["messages"])


async def test_invalid_plan_goes_back_to_planner_then_valid_plan_is_stored(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    planner = await _planner(api, fake_llm)
    fake_llm.script(planner["model"], submit(INVALID), submit(VALID))

    response = await api.post(
        "/api/v1/create-dag",
        json={"goal": "add two numbers", "agent": planner["name"], "name": "planned-sum"},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["dag"]["name"] == "planned-sum"
    assert body["dag"]["spec"]["nodes"][0]["id"] == "add"
    assert body["dag"]["description"] == "add two numbers"
    assert body["plan"]["attempts"] == 2
    assert body["plan"]["agent"] == planner["name"]
    assert body["plan"]["usage"] == {"requests": 2, "input_tokens": 22, "output_tokens": 14}
    assert body["plan"]["workflow_id"].startswith(f"planner-{planner['name']}-")
    first, second = fake_llm.calls(planner["model"])
    # The first request offered the tool catalog and the submit tool; the second carried every
    # validation problem of the first plan back to the model.
    assert "calculator" in _text_of(first["body"])
    assert [t["function"]["name"] for t in first["body"]["tools"]] == [PLAN_TOOL]
    feedback = _text_of(second["body"])
    assert "unknown tool 'no_such_tool'" in feedback
    assert "depends on unknown node 'ghost'" in feedback
    stored = await api.get(f"/api/v1/dags/{body['dag']['id']}")
    assert stored.status_code == 200
    assert stored.json()["spec"] == body["dag"]["spec"]


async def test_always_invalid_plan_answers_422_with_last_attempt_and_problems(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    planner = await _planner(api, fake_llm)
    fake_llm.handlers[planner["model"]] = submit(INVALID)
    before = (await api.get("/api/v1/dags", params={"name": "broken", "limit": 500})).json()

    response = await api.post("/api/v1/create-dag", json={"goal": "impossible", "agent": planner["name"]})

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["attempts"] == 3
    assert detail["last_attempt"] == INVALID
    assert detail["usage"] == {"requests": 3, "input_tokens": 33, "output_tokens": 21}
    assert "node 'a': unknown tool 'no_such_tool'" in detail["problems"]
    assert "node 'b' depends on unknown node 'ghost'" in detail["problems"]
    assert len(fake_llm.calls(planner["model"])) == 3
    after = (await api.get("/api/v1/dags", params={"name": "broken", "limit": 500})).json()
    assert after == before


async def test_schema_invalid_plan_is_retried_with_the_validation_errors(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    planner = await _planner(api, fake_llm)
    both = {"name": "x", "nodes": [{"id": "a", "tool": "noop", "agent": "someone", "prompt": "p"}]}
    fake_llm.script(planner["model"], submit(both), submit(VALID))

    response = await api.post("/api/v1/create-dag", json={"goal": "g", "agent": planner["name"]})

    assert response.status_code == 201, response.text
    second = fake_llm.calls(planner["model"])[1]
    assert "needs exactly one of 'tool' or 'agent'" in _text_of(second["body"])


async def test_missing_planner_agent_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/create-dag", json={"goal": "g", "agent": "no-such-planner"})
    assert response.status_code == 422
    assert "no-such-planner" in response.json()["detail"]


async def test_create_and_execute_plans_stores_and_starts(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    planner = await _planner(api, fake_llm)
    fake_llm.script(planner["model"], submit(VALID))

    response = await api.post(
        "/api/v1/create-and-execute-dag",
        json={"goal": "add", "agent": planner["name"], "params": {"expr": "20 + 22"}},
    )

    assert response.status_code == 202, response.text
    body = response.json()
    execution_id = body["execution"]["id"]
    assert execution_id.startswith(f"dag-{body['dag']['id']}-")
    handle_result = await api.get(f"/api/v1/dag-executions/{execution_id}")
    assert handle_result.status_code == 200
    final = await wait_closed(api, execution_id)
    assert final["status"] == "succeeded", final
    assert {n["id"]: n.get("output") for n in final["nodes"]} == {"add": 42, "echo": 42}
