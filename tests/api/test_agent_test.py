"""`POST /agents/{id}/test`: a real workflow whose model request is an activity."""

import re

import httpx
from temporalio.api.enums.v1 import EventType, RetryState
from temporalio.client import Client, WorkflowExecutionStatus

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
