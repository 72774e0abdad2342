"""MessageWorkflow replays deterministically: a message that became a task, one that waited for a
usable provider first, and the recorded history.

Re-record the kept history (after a deliberate, versioned change) with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_message_replay.py`.
"""

import uuid

import httpx
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from tests.api.intake_helpers import FakeIntake, classification, outcome, poll_message, setup_intake
from tests.fakes.openai_server import FakeOpenAI
from tests.workflows.replay import HISTORIES, record, recorded, replayer
from workflows.message import MessageWorkflow

RECORDED = HISTORIES / "message_task.json"


@pytest_asyncio.fixture(scope="module")
async def intake(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> FakeIntake:
    return await setup_intake(api, fake_llm)


def _replayer() -> Replayer:
    return replayer(MessageWorkflow)


def _types(history: WorkflowHistory) -> list[EventType.ValueType]:
    return [e.event_type for e in history.events]


async def test_task_message_history_replays(
    api: httpx.AsyncClient, client: Client, intake: FakeIntake
) -> None:
    text = f"Send Anna 20 EUR on Friday at 6pm ({uuid.uuid4().hex[:6]})"
    intake.script(
        text,
        classification=classification("Send Anna 20 EUR", "finance", is_task=True),
        entities={
            "people": ["Anna"],
            "dates": ["Friday at 6pm"],
            "amounts": [{"value": 20, "currency": "EUR"}],
        },
    )
    response = await api.post("/api/v1/messages", json={"text": text, "sent_at": "2026-03-02T10:00:00+01:00"})
    assert response.status_code == 201, response.text
    result = await outcome(client, response.json())
    assert result.status == "classified" and result.task_id is not None
    history = await client.get_workflow_handle(response.json()["workflow_id"]).fetch_history()
    types = _types(history)
    # progress, pin agents, classifier request, extractor request, store (with the task), usage
    assert types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 6
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    await _replayer().replay_workflow(history)
    record(RECORDED, history)


async def test_history_that_waited_for_a_provider_replays(
    api: httpx.AsyncClient, client: Client, intake: FakeIntake
) -> None:
    provider_url = f"/api/v1/providers/{intake.provider['id']}"
    assert (await api.patch(provider_url, json={"is_active": False})).status_code == 200
    try:
        response = await api.post(
            "/api/v1/messages", json={"text": f"Water the plants ({uuid.uuid4().hex[:6]})"}
        )
        assert response.status_code == 201, response.text
        await poll_message(api, response.json()["id"], lambda m: m["status_reason"] is not None)
    finally:
        assert (await api.patch(provider_url, json={"is_active": True})).status_code == 200
    assert (await outcome(client, response.json())).status == "classified"
    history = await client.get_workflow_handle(response.json()["workflow_id"]).fetch_history()
    assert EventType.EVENT_TYPE_TIMER_FIRED in _types(history)
    await _replayer().replay_workflow(history)


async def test_recorded_history_replays_with_current_code() -> None:
    history = WorkflowHistory.from_json("message-recorded", recorded(RECORDED))
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == "MessageWorkflow"
    assert _types(history)[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    await _replayer().replay_workflow(history)
