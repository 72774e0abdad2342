"""Ctrl-C on `make run` while the model answers a request: the supervisor stops the API, then the
worker, which lets the request finish and records its answer before it exits (worker.py drains
for WORKER_DRAIN_S), then Temporal, then the model. After the next start the DAG goes on from that
answer: the model was never cut off and never asked again."""

import secrets
from pathlib import Path

import httpx
import pytest

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.stack import running_launcher, until

pytestmark = pytest.mark.slow

MODEL_SECONDS = 4.0


async def test_stopping_make_run_mid_request_lets_the_request_finish_and_asks_it_once(
    fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    model = unique("fake-drain")
    fake_llm.slow(model, MODEL_SECONDS)
    token = secrets.token_urlsafe(24)
    same = {"API_TOKEN": token, "TASK_QUEUE": unique("drain")}  # the next start finds the same work
    headers = {"Authorization": f"Bearer {token}"}
    with running_launcher(tmp_path, **same) as first:
        async with httpx.AsyncClient(base_url=first.api_url, headers=headers, timeout=30) as http:
            provider = await http.post(
                "/api/v1/providers",
                json={
                    "name": unique("drain"),
                    "kind": "openai_compatible",
                    "base_url": fake_llm.base_url,
                    "api_key": fake_llm.api_key,
                },
            )
            assert provider.status_code == 201, provider.text
            agent = await http.post(
                "/api/v1/agents",
                json={"name": unique("drain"), "provider_id": provider.json()["id"], "model": model},
            )
            assert agent.status_code == 201, agent.text
            spec = {
                "name": unique("drain"),
                "nodes": [{"id": "ask", "agent": agent.json()["name"], "prompt": "hi"}],
            }
            dag = await http.post("/api/v1/dags", json={"spec": spec})
            assert dag.status_code == 201, dag.text
            started = await http.post("/api/v1/execute-dag", json={"dag_id": dag.json()["id"], "params": {}})
            assert started.status_code == 202, started.text
            execution_id = started.json()["id"]
        await until(lambda: fake_llm.in_flight[model] > 0, "the model request in flight", first, 90)
    # Leaving the block sent Ctrl-C and waited for a clean exit with no child left.
    assert model not in fake_llm.aborted, first.output
    assert len(fake_llm.calls(model)) == 1

    with running_launcher(tmp_path, **same) as second:
        async with httpx.AsyncClient(base_url=second.api_url, headers=headers, timeout=30) as http:

            async def closed() -> bool:
                response = await http.get(f"/api/v1/dag-executions/{execution_id}")
                return response.status_code == 200 and response.json()["status"] != "running"

            await until(closed, "the execution to finish", second, 120)
            body = (await http.get(f"/api/v1/dag-executions/{execution_id}")).json()
    assert body["status"] == "succeeded", body
    assert len(fake_llm.calls(model)) == 1  # answered once, before the stop; never asked again
