"""An agent version's own run limits, `max_requests` and `max_tool_calls` (issue 25, item 5): a
long tool loop runs past pydantic-ai's hidden default of 50 requests, and reaching a limit is a
typed, final failure that names the limit and the setting."""

import json
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider


async def _looping_agent(
    api: httpx.AsyncClient, fake: FakeOpenAI, calls: int, **limits: Any
) -> dict[str, Any]:
    """A version with the `noop` tool whose model calls it `calls` times, then answers."""
    provider = await make_provider(api, fake)
    agent = await make_agent(api, provider["id"], tools=["noop"], **limits)
    made = 0

    def handle(body: dict[str, Any]) -> dict[str, Any]:
        nonlocal made
        if made == calls:
            return {"role": "assistant", "content": f"done after {made} calls"}
        made += 1
        call = {"id": f"call_{made}", "type": "function"}
        call["function"] = {"name": "noop", "arguments": json.dumps({"value": made})}  # type: ignore[assignment]
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    fake.handlers[agent["model"]] = handle
    return agent


async def test_a_tool_loop_of_80_calls_runs_past_pydantic_ais_default_of_50(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agent = await _looping_agent(api, fake_llm, 80)
    assert agent["max_requests"] == 100 and agent["max_tool_calls"] is None
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "loop"})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "done after 80 calls"
    assert response.json()["usage"]["requests"] == 81


async def test_reaching_max_requests_or_max_tool_calls_is_a_final_typed_failure_naming_it(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    for limits, said in (
        ({"max_requests": 5}, "request_limit of 5"),
        ({"max_tool_calls": 3}, "tool_calls_limit of 3"),
    ):
        agent = await _looping_agent(api, fake_llm, 80, **limits)
        response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "loop"})
        assert response.status_code == 502, response.text
        body = response.json()
        assert body["error"] == "AgentLimitReached"
        assert said in body["detail"] and "max_requests is" in body["detail"], body["detail"]
        workflow_id = body["detail"].rsplit("(workflow ", 1)[1].rstrip(")")
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        # Failed once, for good: no workflow task failing and retrying.
        kinds = [e.event_type for e in history.events]
        assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds


async def test_limits_are_validated_and_a_patch_makes_a_version_with_them(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    for bad in ({"max_requests": 0}, {"max_requests": 10_001}, {"max_tool_calls": 0}):
        refused = await api.post(
            "/api/v1/agents", json={"name": "limited", "provider_id": provider["id"], "model": "m", **bad}
        )
        assert refused.status_code == 422, refused.text
        assert next(iter(bad)) in refused.text
    agent = await make_agent(api, provider["id"])
    patched = await api.patch(
        f"/api/v1/agents/{agent['id']}", json={"max_requests": 300, "max_tool_calls": 500}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    assert (patched.json()["max_requests"], patched.json()["max_tool_calls"]) == (300, 500)
    nulled = await api.patch(f"/api/v1/agents/{agent['id']}", json={"max_requests": None})
    assert nulled.status_code == 422 and "max_requests cannot be null" in nulled.text
