"""Agents using registry tools: each call is a Temporal activity, only the version's tools are
offered, bad tool input goes back to the model, and `run_agent` reports nested usage."""

import dataclasses
import json
from typing import Any

import httpx
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.tools.registry import TOOLS
from contracts.tools import PREVIEW_CHARS, ToolResult
from core.settings import Settings
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI, tool_call
from tests.helpers import decoded_history, make_agent, make_provider
from tests.workflows.replay import replayer
from workflows.agent_test import AgentTestWorkflow

CALL_TOOL_ACTIVITY = "agent__goalflow_agent__toolset__goalflow_tools__call_tool"


def tool_messages(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


def answer_with_tool_result(body: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": f"result: {tool_messages(body)[-1]}"}


def offered(body: dict[str, Any]) -> list[str]:
    return sorted(t["function"]["name"] for t in body.get("tools", []))


async def history(client: Client, workflow_id: str) -> list[HistoryEvent]:
    return await decoded_history(client, workflow_id)


def scheduled_activities(events: list[HistoryEvent]) -> list[tuple[str, str]]:
    """(activity type, summary) of every scheduled activity."""
    found = []
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            summary = event.user_metadata.summary.data.decode() if event.user_metadata.summary.data else ""
            found.append((event.activity_task_scheduled_event_attributes.activity_type.name, summary))
    return found


async def test_agent_calls_calculator_as_activity_and_sees_result(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=["calculator", "current_time"])
    fake_llm.script(
        agent["model"], lambda body: tool_call("calculator", {"expression": "6*7"}), answer_with_tool_result
    )
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "six times seven?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == "result: 42"
    assert body["usage"]["requests"] == 2

    first, second = fake_llm.calls(agent["model"])
    assert offered(first["body"]) == ["calculator", "current_time"]
    assert tool_messages(second["body"]) == ["42"]

    events = await history(client, body["workflow_id"])
    activities = scheduled_activities(events)
    tool_calls = [a for a in activities if a[0] == CALL_TOOL_ACTIVITY]
    assert len(tool_calls) == 1
    assert "calculator" in tool_calls[0][1]

    # The run, tool call included, replays deterministically from its history.
    await replayer(AgentTestWorkflow).replay_workflow(
        await client.get_workflow_handle(body["workflow_id"]).fetch_history()
    )


async def test_agent_is_offered_only_its_versions_tools(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> None:
    provider = await make_provider(api, fake_llm)
    bare = await make_agent(api, provider["id"])
    response = await api.post(f"/api/v1/agents/{bare['id']}/test", json={"prompt": "hi"})
    assert response.status_code == 200, response.text
    [call] = fake_llm.calls(bare["model"])
    assert "calculator" not in offered(call["body"])
    assert offered(call["body"]) == []

    with_memory = await make_agent(api, provider["id"], tools=["remember", "recall"])
    await api.post(f"/api/v1/agents/{with_memory['id']}/test", json={"prompt": "hi"})
    [call] = fake_llm.calls(with_memory["model"])
    assert offered(call["body"]) == ["recall", "remember"]


async def test_tool_the_version_does_not_list_cannot_be_called(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=["current_time"])
    fake_llm.script(
        agent["model"],
        lambda body: tool_call("calculator", {"expression": "1+1"}),
        lambda body: {"role": "assistant", "content": "gave up"},
    )
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "add"})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "gave up"
    _, second = fake_llm.calls(agent["model"])
    [refusal] = tool_messages(second["body"])
    assert "Unknown tool name: 'calculator'" in refusal
    activities = scheduled_activities(await history(client, response.json()["workflow_id"]))
    assert CALL_TOOL_ACTIVITY not in [a[0] for a in activities]


async def test_bad_tool_input_goes_back_to_the_model(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=["calculator"])
    fake_llm.script(
        agent["model"],
        lambda body: tool_call("calculator", {"expression": "9**9**9"}),
        answer_with_tool_result,
    )
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "big"})
    assert response.status_code == 200, response.text
    assert "CalculatorRejected" in response.json()["output"]


async def test_run_agent_tool_reports_nested_usage(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    helper = await make_agent(api, provider["id"])
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, workflow_id=unique("nested"))
    result = await environment.run(TOOLS["run_agent"].activity, {"agent": helper["name"], "prompt": "ping"})
    assert isinstance(result, ToolResult)
    assert result.output == "echo: ping"
    assert result.usage.requests == 1
    assert result.usage.input_tokens == 11
    assert result.usage.output_tokens == 7


async def test_agent_delegates_to_another_agent_through_run_agent(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    helper = await make_agent(api, provider["id"])
    boss = await make_agent(api, provider["id"], tools=["run_agent"])
    fake_llm.script(
        boss["model"],
        lambda body: tool_call("run_agent", {"agent": helper["name"], "prompt": "status?"}),
        answer_with_tool_result,
    )
    response = await api.post(f"/api/v1/agents/{boss['id']}/test", json={"prompt": "ask helper"})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "result: echo: status?"
    [helper_call] = fake_llm.calls(helper["model"])
    assert offered(helper_call["body"]) == []
    activities = scheduled_activities(await history(client, response.json()["workflow_id"]))
    assert [a[0] for a in activities].count(CALL_TOOL_ACTIVITY) == 1
    # The boss's two model requests plus the helper's one, run inside the tool (SPEC §7).
    assert response.json()["usage"] == {"requests": 3, "input_tokens": 33, "output_tokens": 21}


async def test_large_tool_output_reaches_model_as_artifact_reference(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=["noop"])
    big = "row\n" * 5000
    fake_llm.script(
        agent["model"],
        lambda body: tool_call("noop", {"value": big}),
        lambda body: {"role": "assistant", "content": "stored"},
    )
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "echo big"})
    assert response.status_code == 200, response.text
    _, second = fake_llm.calls(agent["model"])
    [message] = tool_messages(second["body"])
    assert big not in message
    seen = json.loads(message)
    assert seen["reference"] == f"artifact://{seen['artifact']}"
    assert seen["preview"] == big[:PREVIEW_CHARS]
    assert seen["artifact"].startswith(response.json()["workflow_id"])
    assert (settings.artifacts_dir / seen["artifact"]).read_text() == big
