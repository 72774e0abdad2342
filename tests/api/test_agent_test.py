"""`POST /agents/{id}/test`: a real workflow whose model request is an activity."""

import httpx

from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider


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
