"""The embedded model's planner (a `local` provider) through `POST /create-dag`: the scaffold of
workflows/plan_scaffold.py, its model requests in native JSON-schema mode, and the checks that
send a bad answer back with its reason. The model is the OpenAI-compatible fake."""

import json
from typing import Any

import httpx
from temporalio.client import Client

from tests.api.goal_helpers import wait_closed
from tests.api.intake_helpers import answer
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider


async def _local_planner(api: httpx.AsyncClient, fake: FakeOpenAI) -> dict[str, Any]:
    provider = await make_provider(api, fake, kind="local")
    return await make_agent(api, provider["id"], system_prompt="You plan small goals.")


async def _plan(api: httpx.AsyncClient, planner: dict[str, Any], goal: str) -> httpx.Response:
    return await api.post("/api/v1/create-dag", json={"goal": goal, "agent": planner["name"]})


def _said(body: dict[str, Any]) -> str:
    return json.dumps(body["messages"])


async def test_a_goal_that_states_its_steps_is_planned_without_a_model_request_and_saves_its_file(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    planner = await _local_planner(api, fake_llm)
    planned = await _plan(api, planner, "What time is it in Tokyo? Save it in tokyo.md.")
    assert planned.status_code == 201, planned.text
    nodes = planned.json()["dag"]["spec"]["nodes"]
    assert [(n["tool"], n["input"].get("timezone") or n["input"].get("name")) for n in nodes] == [
        ("current_time", "Asia/Tokyo"),
        ("write_artifact", "tokyo.md"),
    ]
    assert (
        nodes[1]["depends_on"] == ["step1"] and "{{nodes.step1.output.iso}}" in nodes[1]["input"]["content"]
    )
    assert planned.json()["plan"]["usage"]["requests"] == 0
    assert fake_llm.calls(planner["model"]) == []


async def test_a_tool_input_the_goal_does_not_state_is_filled_by_the_model_and_a_bad_zone_goes_back(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    planner = await _local_planner(api, fake_llm)
    fake_llm.script(
        planner["model"],
        lambda body: answer(body, {"timezone": "UTC+08"}),
        lambda body: answer(body, {"timezone": "Europe/Paris"}),
    )
    planned = await _plan(api, planner, "Tell me the time where the Eiffel tower stands.")
    assert planned.status_code == 201, planned.text
    assert planned.json()["dag"]["spec"]["nodes"] == [
        {"id": "step1", "tool": "current_time", "input": {"timezone": "Europe/Paris"}}
    ]
    first, second = fake_llm.calls(planner["model"])
    # The request is held to real zones by its schema, and the bad answer came back with why.
    schema = first["body"]["response_format"]["json_schema"]["schema"]
    assert "Asia/Tokyo" in schema["properties"]["timezone"]["enum"]
    assert "'UTC+08' is not an IANA time zone name" in _said(second["body"])


async def test_a_whole_plan_that_copies_the_prompts_example_is_refused_with_the_reason(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    planner = await _local_planner(api, fake_llm)
    copied = {
        "name": "multiply-and-explain",
        "steps": [{"tool": "calculator", "input": {"expression": "17 * 23"}, "after": []}],
    }
    own = {"name": "haiku", "steps": [{"agent": "summarizer", "prompt": "A haiku about autumn", "after": []}]}
    fake_llm.script(
        planner["model"],
        lambda body: answer(body, {"step": "no-such-step"}),  # the scaffold's pick fails ...
        lambda body: answer(body, copied),  # ... so the whole plan is asked for
        lambda body: answer(body, own),
    )
    planned = await _plan(api, planner, "Write a haiku about autumn.")
    assert planned.status_code == 201, planned.text
    assert planned.json()["dag"]["spec"]["nodes"][0]["agent"] == "summarizer"
    calls = fake_llm.calls(planner["model"])
    assert len(calls) == 3
    assert "copies the instructions' example ('17 * 23')" in _said(calls[2]["body"])


async def test_a_plan_that_never_validates_reports_the_scaffolds_requests_in_its_usage(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    planner = await _local_planner(api, fake_llm)
    copied = {
        "name": "multiply-and-explain",
        "steps": [{"tool": "calculator", "input": {"expression": "17 * 23"}, "after": []}],
    }
    fake_llm.script(
        planner["model"],
        lambda body: answer(body, {"step": "no-such-step"}),  # the scaffold's one request
        *[lambda body: answer(body, copied)] * 3,  # every whole plan copies the example
    )
    refused = await _plan(api, planner, "Write a haiku about autumn.")
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert detail["attempts"] == 3 and "copies the instructions' example" in detail["message"]
    assert detail["usage"]["requests"] == 4 == len(fake_llm.calls(planner["model"]))


async def test_a_stored_dag_with_a_zone_or_expression_the_tools_cannot_read_is_a_422(
    api: httpx.AsyncClient,
) -> None:
    spec = {
        "name": "bad-inputs",
        "nodes": [
            {"id": "t", "tool": "current_time", "input": {"timezone": "UTC+08"}},
            {"id": "c", "tool": "calculator", "input": {"expression": "17 x 23"}},
            {"id": "p", "tool": "calculator", "input": {"expression": "{{params.e}}"}},
        ],
        "params": {"e": "1 + 1"},
    }
    refused = await api.post("/api/v1/dags", json={"spec": spec})
    assert refused.status_code == 422, refused.text
    text = refused.text
    assert "'UTC+08' is not an IANA time zone name" in text
    assert "'17 x 23' is not an arithmetic expression" in text
    assert "{{params.e}}" not in text  # a templated value is whatever it becomes


async def test_a_goal_on_the_embedded_model_saves_its_file_and_reports_only_what_its_steps_produced(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    """The README tour's first goal with planner and summarizer on a `local` provider: no model
    request at all, the file holds the number, and the report is the steps' outputs (the real
    135M model, asked, reported "17*23 = 381")."""
    planner = await _local_planner(api, fake_llm)
    previous = await api.get("/api/v1/agents/resolve/summarizer")
    summarizer = await api.post(
        "/api/v1/agents",
        json={
            "name": "summarizer",
            "provider_id": planner["provider_id"],
            "model": "local-summarizer",  # not the session's fake summarizer: later tests replace it
            "system_prompt": "You summarise the text you are given.",
            "activate": True,
        },
    )
    assert summarizer.status_code == 201, summarizer.text
    objective = "Compute 17*23 and save the answer in a file answer.md"
    goal = await api.post(
        "/api/v1/goals", json={"title": "multiply", "objective": objective, "agent_name": planner["name"]}
    )
    try:
        run_id = (await api.post(f"/api/v1/goals/{goal.json()['id']}/run")).json()["id"]
        await wait_closed(client, run_id)
    finally:  # the session's other goal runs keep the summarizer they had
        if previous.status_code == 200:
            await api.post(f"/api/v1/agents/{previous.json()['id']}/activate")
    run = (await api.get(f"/api/v1/runs/{run_id}")).json()
    assert run["status"] == "succeeded", run
    assert [n["tool"] for n in run["result"]["plan"]["nodes"]] == ["calculator", "write_artifact"]
    assert (await api.get("/api/v1/artifacts/answer.md")).text == "391\n"
    summary = run["result"]["summary"]
    assert summary == (
        "multiply: 2 of 2 step(s) succeeded.\n- step1 (calculator, succeeded): 391\n"
        "- step2 (write_artifact, succeeded): saved answer.md (4 bytes)"
    )
    assert fake_llm.calls(planner["model"]) == [] and fake_llm.calls("local-summarizer") == []
