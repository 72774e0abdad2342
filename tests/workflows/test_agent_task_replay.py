"""AgentTaskWorkflow replays deterministically, attachments (text and image) included."""

import base64

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.fakes.openai_server import Fail, FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, record, replayer
from workflows.agent_task import AgentTaskWorkflow

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def test_agent_task_histories_replay_without_nondeterminism(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    fake_llm.script(agent["model"], Fail(503, "busy"))
    response = await api.post(
        "/api/v1/task",
        data={"agent": agent["name"], "prompt": "Compare them."},
        files=[
            ("files", ("notes.md", b"# Notes\nall good", "text/markdown")),
            ("files", ("dot.png", PNG, "image/png")),
        ],
    )
    assert response.status_code == 200, response.text
    workflow_id = response.json()["workflow_id"]
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    types = [e.event_type for e in history.events]
    # pin agent, load attachments, model request (retried once inside the activity), record usage
    assert types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 4
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    await replayer(AgentTaskWorkflow).replay_workflow(history)
    record(HISTORIES / "agent_task.json", history)
