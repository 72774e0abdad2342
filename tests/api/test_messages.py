"""Chat intake: a message is classified, its entities extracted and, if it is a task, a task made,
by MessageWorkflow with the `classifier` and `extractor` agents on the fake LLM server."""

import asyncio
import json
import os
import sys
import uuid
from typing import Any

import httpx
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from contracts.search import RUN_KIND
from core.settings import Settings
from tests.api.intake_helpers import (
    CLASSIFIER_MODEL,
    EXTRACTOR_MODEL,
    FakeIntake,
    activate_intake_agents,
    classification,
    outcome,
    poll_message,
    setup_intake,
    wait_until,
)
from tests.conftest import ROOT, api_client, unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_provider
from worker import build_worker

MESSAGES = "/api/v1/messages"


@pytest_asyncio.fixture(scope="module")
async def intake(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> FakeIntake:
    return await setup_intake(api, fake_llm)


SENT_AT = "2026-03-02T10:00:00+01:00"  # a Monday, in UTC+1


async def _post(api: httpx.AsyncClient, text: str, **extra: Any) -> dict[str, Any]:
    response = await api.post(MESSAGES, json={"text": text, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _calls_for(fake: FakeOpenAI, model: str, text: str) -> list[dict[str, Any]]:
    return [c for c in fake.calls(model) if text in json.dumps(c["body"]["messages"], ensure_ascii=False)]


async def test_task_message_is_classified_its_entities_resolved_and_it_becomes_a_task(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI, intake: FakeIntake
) -> None:
    text = f"Buy milk (2.50 €) tomorrow at 5pm, remind Anna ({uuid.uuid4().hex[:6]})"
    intake.script(
        text,
        classification=classification("Buy milk", "shopping", is_task=True, urgency="normal"),
        entities={
            # Bob, Friday and 20 are not in the message: a model made them up, they are dropped.
            "people": ["Anna", "Bob"],
            "dates": ["tomorrow at 5pm", "Friday"],
            "amounts": [{"value": 2.5, "currency": "€"}, {"value": 20, "currency": "EUR"}],
            "links": [],
        },
    )
    created = await _post(api, text, source="telegram", sender_id=1001, chat_id=-42, sent_at=SENT_AT)
    assert created["status"] == "pending"
    assert created["workflow_id"] == f"message-{created['id']}"
    assert (created["sender_id"], created["chat_id"], created["source"]) == ("1001", "-42", "telegram")

    result = await outcome(client, created)
    assert result.status == "classified" and result.task_id is not None

    message = (await api.get(f"{MESSAGES}/{created['id']}")).json()
    assert message["status"] == "classified" and message["status_reason"] is None
    assert message["classification"] == {
        "title": "Buy milk",
        "is_task": True,
        "category": "shopping",
        "urgency": "normal",
    }
    entities = message["entities"]
    assert entities["people"] == ["Anna"]
    assert entities["dates"] == [
        {
            "text": "tomorrow at 5pm",
            "date": "2026-03-03",
            "time": "17:00:00",
            "at": "2026-03-03T17:00:00+01:00",
        }
    ]
    assert entities["amounts"] == [{"value": 2.5, "currency": "EUR"}]
    task = message["task"]
    assert task["id"] == result.task_id == message["task_id"]
    assert (task["title"], task["status"], task["priority"]) == ("Buy milk", "todo", "normal")
    assert task["due_at"] == "2026-03-03T16:00:00Z"
    assert task["assignees"] == ["Anna"]
    assert task["message_id"] == created["id"] and task["description"] == text
    assert (await api.get(f"/api/v1/tasks/{task['id']}")).json() == task

    # Both agents answered in the local model's native JSON-schema mode, once each.
    for model in (CLASSIFIER_MODEL, EXTRACTOR_MODEL):
        calls = _calls_for(fake_llm, model, text)
        assert len(calls) == 1
        assert calls[0]["body"]["response_format"]["type"] == "json_schema"
    # Findable in Temporal as RunKind="message".
    described = await client.get_workflow_handle(created["workflow_id"]).describe()
    assert described.typed_search_attributes.get(RUN_KIND) == "message"


async def test_message_that_is_not_a_task_creates_no_task(
    api: httpx.AsyncClient, client: Client, intake: FakeIntake
) -> None:
    text = f"FYI the office wifi is back ({uuid.uuid4().hex[:6]}) https://status.example.com/wifi"
    intake.script(
        text,
        classification={
            "title": "Wifi is back",
            "is_task": False,
            "category": "information",
            "urgency": "low",
        },
    )
    tasks_before = (await api.get("/api/v1/tasks", params={"limit": 500})).json()
    created = await _post(api, text)
    result = await outcome(client, created)
    assert (result.status, result.task_id) == ("classified", None)
    message = (await api.get(f"{MESSAGES}/{created['id']}")).json()
    assert message["classification"]["is_task"] is False
    assert (message["task"], message["task_id"]) == (None, None)
    # The model found no link; the one in the text is kept anyway.
    assert message["entities"]["links"] == ["https://status.example.com/wifi"]
    tasks_after = (await api.get("/api/v1/tasks", params={"limit": 500})).json()
    assert [t for t in tasks_after if t["message_id"] == created["id"]] == []
    assert len(tasks_after) == len(tasks_before)


async def test_agents_on_other_providers_answer_through_an_output_tool(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI, intake: FakeIntake
) -> None:
    provider = await make_provider(api, fake_llm)  # openai_compatible
    classifier_model, extractor_model = unique("fake-tool-classifier"), unique("fake-tool-extractor")
    fake_llm.handlers[classifier_model] = intake.classify
    fake_llm.handlers[extractor_model] = intake.extract
    text = f"Pay the rent of 900 EUR by 2026-03-05 ({uuid.uuid4().hex[:6]})"
    intake.script(
        text,
        classification=classification("Pay the rent", "finance", is_task=True, urgency="high"),
        entities={"dates": ["2026-03-05"], "amounts": [{"value": 900, "currency": "eur"}]},
    )
    await activate_intake_agents(
        api, provider["id"], classifier_model=classifier_model, extractor_model=extractor_model
    )
    try:
        created = await _post(api, text, sent_at=SENT_AT)
        result = await outcome(client, created)
    finally:  # the module's native agents again
        for agent in (intake.classifier, intake.extractor):
            assert (await api.post(f"/api/v1/agents/{agent['id']}/activate")).status_code == 200
    assert result.status == "classified"
    call = fake_llm.calls(classifier_model)[0]["body"]
    assert "response_format" not in call and call["tools"][0]["function"]["name"]
    task = (await api.get(f"/api/v1/tasks/{result.task_id}")).json()
    # A day without a time: due at the end of that day, in the message's offset.
    assert (task["priority"], task["due_at"]) == ("high", "2026-03-05T22:59:00Z")
    assert result.entities is not None and result.entities.amounts[0].currency == "EUR"


async def test_message_waits_for_a_usable_provider_with_the_reason_then_is_processed(
    api: httpx.AsyncClient, client: Client, intake: FakeIntake
) -> None:
    provider_url = f"/api/v1/providers/{intake.provider['id']}"
    assert (await api.patch(provider_url, json={"is_active": False})).status_code == 200
    try:
        created = await _post(api, f"Call the plumber ({uuid.uuid4().hex[:6]})")
        waiting = await poll_message(api, created["id"], lambda m: m["status_reason"] is not None)
    finally:
        assert (await api.patch(provider_url, json={"is_active": True})).status_code == 200
    assert waiting["status"] == "pending"
    assert "waiting for a usable provider" in waiting["status_reason"]
    assert "is not active" in waiting["status_reason"]
    result = await outcome(client, created)
    assert result.status == "classified"
    assert (await api.get(f"{MESSAGES}/{created['id']}")).json()["status_reason"] is None


async def test_a_cancelled_message_is_marked_failed(
    api: httpx.AsyncClient, client: Client, intake: FakeIntake
) -> None:
    provider_url = f"/api/v1/providers/{intake.provider['id']}"
    assert (await api.patch(provider_url, json={"is_active": False})).status_code == 200
    try:
        created = await _post(api, f"Fix the bike ({uuid.uuid4().hex[:6]})")
        await poll_message(api, created["id"], lambda m: m["status_reason"] is not None)
        await client.get_workflow_handle(created["workflow_id"]).cancel()
        failed = await poll_message(api, created["id"], lambda m: m["status"] == "failed")
    finally:
        assert (await api.patch(provider_url, json={"is_active": True})).status_code == 200
    assert (failed["status_reason"], failed["task"]) == ("cancelled", None)


async def test_an_answer_that_does_not_fit_the_schema_fails_the_message_with_the_reason(
    api: httpx.AsyncClient, client: Client, intake: FakeIntake
) -> None:
    text = f"Something odd ({uuid.uuid4().hex[:6]})"
    intake.script(text, classification=classification("Odd", "astrology", is_task=False, urgency="low"))
    created = await _post(api, text)
    result = await outcome(client, created)
    assert result.status == "failed"
    message = (await api.get(f"{MESSAGES}/{created['id']}")).json()
    assert message["status"] == "failed"
    assert "classifier's answer does not fit its schema" in message["status_reason"]
    assert "category" in message["status_reason"]


async def test_messages_list_filters_by_category_task_source_and_since_and_pages(
    api: httpx.AsyncClient, client: Client, intake: FakeIntake
) -> None:
    tag = uuid.uuid4().hex[:6]
    intake.script(
        f"Book flights to Rome ({tag})",
        classification=classification("Book flights", "travel", is_task=True, urgency="normal"),
    )
    first = await _post(api, f"Book flights to Rome ({tag})", source="webapp")
    await outcome(client, first)
    since = (await api.get(f"{MESSAGES}/{first['id']}")).json()["created_at"]
    text = f"Train delayed again ({tag})"
    intake.script(text, classification=classification("Delay", "travel", is_task=False, urgency="low"))
    second = await _post(api, text, source="webapp")
    await outcome(client, second)

    async def ids(**params: Any) -> list[int]:
        response = await api.get(MESSAGES, params={"since": since, **params})
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()]

    assert await ids(source="webapp", category="travel", is_task="false") == [second["id"]]
    webapp = await ids(source="webapp")
    assert webapp[:2] == [second["id"], first["id"]]  # newest first
    assert await ids(source="webapp", limit=1, offset=1) == [first["id"]]
    listed = (await api.get(MESSAGES, params={"since": since, "source": "webapp", "limit": 1})).json()[0]
    assert listed["classification"]["category"] == "travel" and listed["task"] is None
    for bad in ({"category": "astrology"}, {"source": "fax"}, {"since": "yesterday"}, {"limit": 0}):
        assert (await api.get(MESSAGES, params=bad)).status_code == 422


async def test_bad_messages_are_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    before = (await api.get(MESSAGES, params={"limit": 1})).json()
    for body in (
        {"text": ""},
        {"text": "x" * 4097},
        {"text": "hi", "source": "fax"},
        {"text": "hi", "sent_at": "2026-03-02T10:00:00"},  # no offset: ambiguous
        {"text": "hi", "sender_id": "x" * 65},
        {"source": "api"},
    ):
        response = await api.post(MESSAGES, json=body)
        assert response.status_code == 422, (body, response.text)
    assert (await api.get(MESSAGES, params={"limit": 1})).json() == before
    assert (await api.get(f"{MESSAGES}/2147483647")).status_code == 404
    assert (await anon.post(MESSAGES, json={"text": "hi"})).status_code == 401
    assert (await anon.get(MESSAGES)).status_code == 401


async def test_stats_count_tasks_by_status_and_messages_by_category(
    api: httpx.AsyncClient, client: Client, intake: FakeIntake
) -> None:
    before = (await api.get("/api/v1/stats")).json()
    text = f"Dentist appointment next Friday ({uuid.uuid4().hex[:6]})"
    intake.script(text, classification=classification("Dentist", "health", is_task=True, urgency="low"))
    await outcome(client, await _post(api, text))
    after = (await api.get("/api/v1/stats")).json()
    assert after["messages_by_category"]["health"] == before["messages_by_category"]["health"] + 1
    assert after["todo_tasks"]["todo"] == before["todo_tasks"]["todo"] + 1
    assert set(after["todo_tasks"]) == {"todo", "in_progress", "done", "cancelled"}


async def test_message_processing_survives_a_worker_killed_mid_request(
    settings: Settings, client: Client, fake_llm: FakeOpenAI, intake: FakeIntake
) -> None:
    """kill -9 the worker while the classifier's request is in flight: another worker retries
    that model request (after its heartbeat timeout) and the message is classified."""
    task_queue = f"intake-restart-{uuid.uuid4().hex[:8]}"
    own = settings.model_copy(update={"task_queue": task_queue})
    text = f"Renew the passport ({uuid.uuid4().hex[:6]})"
    intake.script(
        text,
        classification={
            "title": "Renew passport",
            "is_task": True,
            "category": "personal",
            "urgency": "high",
        },
    )
    env = {**os.environ, "TASK_QUEUE": task_queue, "PYTHONPATH": str(ROOT)}
    doomed = await asyncio.create_subprocess_exec(sys.executable, "-m", "worker", cwd=ROOT, env=env)
    fake_llm.slow(CLASSIFIER_MODEL, 600)
    try:
        async with api_client(own) as api:
            created = await _post(api, text)
            await wait_until(lambda: bool(_calls_for(fake_llm, CLASSIFIER_MODEL, text)))
            doomed.kill()
            await doomed.wait()
            fake_llm.delays.pop(CLASSIFIER_MODEL)
            async with build_worker(client, own):
                result = await outcome(client, created, timeout_s=120)
            assert result.status == "classified" and result.task_id is not None
            assert (await api.get(f"{MESSAGES}/{created['id']}")).json()["task"]["title"] == "Renew passport"
    finally:
        fake_llm.delays.pop(CLASSIFIER_MODEL, None)
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
    assert len(_calls_for(fake_llm, CLASSIFIER_MODEL, text)) == 2
    history = await client.get_workflow_handle(created["workflow_id"]).fetch_history()
    timed_out = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT]
    started = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert timed_out == [] and max(started) == 2  # the model request's second attempt finished it
