"""`POST /task`: files become artifacts and reach the agent; limits answer 413 / 415."""

import base64
import json

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from contracts.agent_task import MAX_TEXT_FILE_BYTES
from tests.api.goal_helpers import wait_closed
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def _agent(api: httpx.AsyncClient, fake: FakeOpenAI) -> dict:
    provider = await make_provider(api, fake)
    return await make_agent(api, provider["id"])


async def test_task_with_a_text_file_gives_its_content_to_the_agent_and_stores_an_artifact(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agent = await _agent(api, fake_llm)
    response = await api.post(
        "/api/v1/task",
        data={"agent": agent["name"], "prompt": "Count the invoices."},
        files=[("files", ("invoices.csv", b"id,amount\n1,10\n2,32\n", "text/csv"))],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["workflow_id"].startswith(f"task-{agent['name']}-")
    assert body["usage"] == {"requests": 1, "input_tokens": 11, "output_tokens": 7}
    [attachment] = body["attachments"]
    assert attachment["kind"] == "text" and attachment["filename"] == "invoices.csv"
    [call] = fake_llm.calls(agent["model"])
    user = json.dumps(call["body"]["messages"][-1])
    assert "Count the invoices." in user and "2,32" in user and "invoices.csv" in user
    stored = await api.get(f"/api/v1/artifacts/{attachment['artifact']}")
    assert stored.status_code == 200
    assert "2,32" in stored.text


async def test_task_with_an_image_sends_it_as_binary_content_and_wait_false_answers_202(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await _agent(api, fake_llm)
    response = await api.post(
        "/api/v1/task",
        data={"agent": agent["name"], "prompt": "Describe it.", "wait": "false"},
        files=[("files[]", ("dot.png", PNG, "image/png"))],
    )
    assert response.status_code == 202, response.text
    workflow_id = response.json()["workflow_id"]
    assert await wait_closed(client, workflow_id) == WorkflowExecutionStatus.COMPLETED
    [call] = fake_llm.calls(agent["model"])
    parts = call["body"]["messages"][-1]["content"]
    image = next(p for p in parts if p["type"] == "image_url")
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


async def test_task_with_an_oversized_file_is_413_and_starts_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agent = await _agent(api, fake_llm)
    big = b"a" * (MAX_TEXT_FILE_BYTES + 1)
    response = await api.post(
        "/api/v1/task",
        data={"agent": agent["name"], "prompt": "Read it."},
        files=[("files", ("big.txt", big, "text/plain"))],
    )
    assert response.status_code == 413, response.text
    assert "big.txt" in response.json()["detail"]
    assert fake_llm.calls(agent["model"]) == []


async def test_task_with_unsupported_or_undecodable_files_is_415(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agent = await _agent(api, fake_llm)
    for upload in (
        ("tool.exe", b"MZ\x90\x00", "application/x-msdownload"),
        ("fake.png", b"not a png", "image/png"),
        ("latin1.txt", "caf\u00e9".encode("latin-1"), "text/plain"),
    ):
        response = await api.post(
            "/api/v1/task", data={"agent": agent["name"], "prompt": "x"}, files=[("files", upload)]
        )
        assert response.status_code == 415, (upload[0], response.text)
    unknown = await api.post("/api/v1/task", data={"agent": "no-such-agent", "prompt": "x"})
    assert unknown.status_code == 404
