"""`POST /agents/{id}/test`: a real workflow whose model request is an activity; with
`"stream": true` an SSE answer that carries the agent's text as it is written, then the result."""

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.sse import KEEPALIVE_COMMENT
from temporalio.api.enums.v1 import EventType, RetryState
from temporalio.client import Client, WorkflowExecutionStatus

from api.routes import agents as agents_route
from core.settings import Settings
from tests.api.sse import served_api
from tests.api.test_live_output import says
from tests.fakes.openai_server import Fail, FakeOpenAI, tool_call
from tests.helpers import make_agent, make_provider

WORKFLOW_ID = re.compile(r"agent-test-\d+-[0-9a-f]{8}")


def _chat_calls(fake: FakeOpenAI, model: str) -> list[dict]:
    return [r for r in fake.calls(model) if r["path"] == "/v1/chat/completions"]


async def _assert_failed_without_retry(client: Client, detail: str) -> None:
    """The workflow named in the answer closed as failed after one model-request attempt."""
    match = WORKFLOW_ID.search(detail)
    assert match, detail
    handle = client.get_workflow_handle(match.group())
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    history = await handle.fetch_history()
    failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
    assert len(failed) == 1
    attrs = failed[0].activity_task_failed_event_attributes
    assert attrs.retry_state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE
    starts = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert all(e.activity_task_started_event_attributes.attempt == 1 for e in starts)


async def test_agent_test_runs_workflow_and_reports_usage_and_timing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "ping"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == "echo: ping"
    assert body["usage"] == {"requests": 1, "input_tokens": 11, "output_tokens": 7}
    assert body["execution_time_ms"] >= 0
    assert body["workflow_id"].startswith(f"agent-test-{agent['id']}-")
    assert body["agent_version"] == 1
    [call] = fake_llm.calls(agent["model"])
    assert call["body"]["temperature"] == 0.2
    assert call["body"]["messages"][0] == {"role": "system", "content": "You are terse."}


async def test_agent_test_pins_requested_version_not_active_one(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    v1 = await make_agent(api, provider["id"])
    v2 = await make_agent(api, provider["id"], name=v1["name"], model=f"{v1['model']}-v2")
    response = await api.post(f"/api/v1/agents/{v2['id']}/test", json={"prompt": "hi"})
    assert response.status_code == 200, response.text
    assert (response.json()["agent_version"], response.json()["model"]) == (2, v2["model"])
    assert len(_chat_calls(fake_llm, v2["model"])) == 1
    assert _chat_calls(fake_llm, v1["model"]) == []


async def test_agent_test_with_output_schema_returns_structured_output(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    agent = await make_agent(api, provider["id"], output_schema=schema)
    fake_llm.script(agent["model"], lambda body: tool_call(body["tools"][0]["function"]["name"], {"n": 7}))
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "count"})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == {"n": 7}


async def test_provider_500_once_is_retried_by_temporal_and_succeeds(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    fake_llm.script(agent["model"], Fail(500, "upstream hiccup"))
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "again"})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "echo: again"
    assert len(_chat_calls(fake_llm, agent["model"])) == 2
    # The retry was Temporal's (a second activity attempt), not the HTTP client's.
    history = await client.get_workflow_handle(response.json()["workflow_id"]).fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) == 2


async def test_provider_401_fails_fast_with_provider_message(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    provider = await make_provider(api, fake_llm, api_key="sk-wrong-key-1234")
    agent = await make_agent(api, provider["id"])
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "ping"})
    assert response.status_code == 502, response.text
    body = response.json()
    assert "Incorrect API key provided" in body["detail"]
    assert "401" in body["detail"]
    assert body["error"] == "ProviderAuthError"
    assert len(_chat_calls(fake_llm, agent["model"])) == 1
    await _assert_failed_without_retry(client, body["detail"])


async def test_unknown_model_fails_fast_with_clear_error(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], model="gpt-does-not-exist")
    before = len(_chat_calls(fake_llm, "gpt-does-not-exist"))
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "ping"})
    assert response.status_code == 502, response.text
    assert "`gpt-does-not-exist` does not exist" in response.json()["detail"]
    assert response.json()["error"] == "ProviderRequestRejected"
    assert len(_chat_calls(fake_llm, "gpt-does-not-exist")) == before + 1
    await _assert_failed_without_retry(client, response.json()["detail"])


async def test_inactive_provider_is_409_without_calling_it(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    await api.patch(f"/api/v1/providers/{provider['id']}", json={"is_active": False})
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "ping"})
    assert response.status_code == 409, response.text
    assert "not active" in response.json()["detail"]
    assert _chat_calls(fake_llm, agent["model"]) == []


async def test_agent_test_of_unknown_agent_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/agents/999999/test", json={"prompt": "ping"})
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


WORDS = 30
PACE_S = 0.05


@pytest_asyncio.fixture(scope="module")
async def served(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    """The API under uvicorn: the ASGI test transport would hand over a streamed body only whole."""
    async with served_api(settings) as http:
        yield http


async def _streamed(http: httpx.AsyncClient, agent_id: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE events of a streamed test, each with the time it arrived (`at`)."""
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    async with http.stream(
        "POST", f"/api/v1/agents/{agent_id}/test", json={**body, "stream": True}
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
            elif fields:
                events.append(
                    {"event": fields.get("event"), "data": json.loads(fields["data"]), "at": time.monotonic()}
                )
                fields = {}
    return events


async def test_a_streamed_test_sends_the_text_as_it_is_written_then_the_result(
    api: httpx.AsyncClient, served: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    text = " ".join(f"word{i}" for i in range(WORDS))
    fake_llm.handlers[agent["model"]] = says(text)
    fake_llm.paces[agent["model"]] = PACE_S
    events = await _streamed(served, agent["id"], {"prompt": "Talk."})
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "result" and set(kinds) == {"output_delta", "result"}, kinds
    deltas = [e["data"] for e in events if e["event"] == "output_delta"]
    assert len(deltas) >= 5  # as it was written (coalesced every ~0.1 s), not at the end
    assert all(set(d) == {"attempt", "offset", "text"} and d["attempt"] == 1 for d in deltas)
    assert [d["offset"] for d in deltas] == [
        sum(len(x["text"]) for x in deltas[:i]) for i in range(len(deltas))
    ]
    result = events[-1]["data"]
    assert "".join(d["text"] for d in deltas) == result["output"] == text
    assert events[0]["at"] < events[-1]["at"] - 0.8  # the first text well before the answer
    # The result is the body the call answers without `stream`.
    plain = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "Talk."})
    assert plain.status_code == 200, plain.text
    assert set(result) == set(plain.json()) and result["output"] == plain.json()["output"]
    assert result["workflow_id"].startswith(f"agent-test-{agent['id']}-")
    assert result["usage"] == {"requests": 1, "input_tokens": 11, "output_tokens": 7}


async def test_a_streamed_test_of_a_model_request_that_is_not_streamed_still_answers(
    api: httpx.AsyncClient, served: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    """A version with an output schema sends its request without streaming (pydantic-ai's output
    handling): no text comes before the answer, and the answer comes all the same."""
    provider = await make_provider(api, fake_llm)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    agent = await make_agent(api, provider["id"], output_schema=schema)
    fake_llm.script(agent["model"], lambda body: tool_call(body["tools"][0]["function"]["name"], {"n": 7}))
    events = await _streamed(served, agent["id"], {"prompt": "count"})
    assert [e["event"] for e in events] == ["result"]
    assert events[0]["data"]["output"] == {"n": 7}
    assert not any(c["body"].get("stream") for c in _chat_calls(fake_llm, agent["model"]))


async def test_a_streamed_test_that_fails_ends_with_an_error_event_in_the_error_shape(
    api: httpx.AsyncClient, served: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    provider = await make_provider(api, fake_llm, api_key="sk-wrong-key-5678")
    agent = await make_agent(api, provider["id"])
    events = await _streamed(served, agent["id"], {"prompt": "ping"})
    assert [e["event"] for e in events] == ["error"]
    error = events[0]["data"]
    plain = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "ping"})
    assert plain.status_code == 502
    assert set(error) == set(plain.json()) == {"detail", "error"}
    assert error["error"] == plain.json()["error"] == "ProviderAuthError"
    assert "Incorrect API key provided" in error["detail"]
    await _assert_failed_without_retry(client, error["detail"])


async def test_stream_is_an_optional_boolean_and_errors_before_the_stream_stay_plain(
    api: httpx.AsyncClient,
) -> None:
    refused = await api.post("/api/v1/agents/1/test", json={"prompt": "ping", "stream": "maybe"})
    assert refused.status_code == 422, refused.text
    assert [p["loc"] for p in refused.json()["detail"]] == [["body", "stream"]]
    missing = await api.post("/api/v1/agents/999999/test", json={"prompt": "ping", "stream": True})
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
    assert missing.headers["content-type"] == "application/json"
    schema = (await api.get("/openapi.json")).json()
    assert schema["components"]["schemas"]["AgentTestRequest"]["properties"]["stream"]["type"] == "boolean"
    assert schema["components"]["schemas"]["AgentTestRequest"]["required"] == ["prompt"]


async def test_a_quiet_stream_is_kept_alive_with_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that thinks long before writing: proxies drop a stream idle for a minute."""
    monkeypatch.setattr(agents_route, "PING_S", 0.05)

    async def slow() -> AsyncIterator[bytes]:
        await asyncio.sleep(0.2)
        yield b"event: result\n\n"

    got = [chunk async for chunk in agents_route._pinged(slow())]
    assert got[-1] == b"event: result\n\n" and len(got) >= 3
    assert set(got[:-1]) == {KEEPALIVE_COMMENT}
