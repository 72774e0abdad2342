"""A provider's API key reaches the provider and nothing else: no answer, log line or history."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from core.settings import Settings
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent

PROVIDERS = "/api/v1/providers"


def _payloads(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere in a protobuf message (inputs, results, failure details, memo)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if isinstance(value, Message):
            yield from _payloads(value)
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        items = value.values() if is_map else value
        for item in items:  # a repeated field or a map
            if isinstance(item, Message):
                yield from _payloads(item)


async def _history_text(client: Client, workflow_id: str) -> tuple[str, str]:
    """The history as JSON, and every payload decoded (through the client's codec if any)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    payloads = [p for event in history.events for p in _payloads(event)]
    assert payloads, "a history with no payloads would make this check vacuous"
    codec = client.data_converter.payload_codec
    if codec is not None:
        payloads = await codec.decode(payloads)
    decoded = "\n".join(p.data.decode("utf-8", "replace") for p in payloads)
    return history.to_json(), decoded


def _auth_headers_seen(fake: FakeOpenAI, model: str | None = None) -> list[str]:
    return [
        r["headers"].get("authorization", "")
        for r in fake.requests
        if model is None or r["body"].get("model") == model
    ]


async def test_api_key_in_no_response_log_or_history_but_used_on_the_wire(
    api: httpx.AsyncClient,
    fake_llm: FakeOpenAI,
    client: Client,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = fake_llm.api_key
    assert secret is not None
    answers: list[str] = []

    def keep(response: httpx.Response, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, response.text
        answers.append(response.text)
        return response.json()

    created = keep(
        await api.post(
            PROVIDERS,
            json={
                "name": unique("secret"),
                "kind": "openai_compatible",
                "base_url": fake_llm.base_url,
                "api_key": secret,
            },
        ),
        201,
    )
    pid = created["id"]
    keep(await api.get(f"{PROVIDERS}/{pid}"))
    keep(await api.get(PROVIDERS, params={"limit": 500}))
    keep(await api.patch(f"{PROVIDERS}/{pid}", json={"api_key": secret}))
    validated = keep(await api.post(f"{PROVIDERS}/{pid}/validate"))
    assert validated["ok"] is True
    agent = await make_agent(api, pid)
    tested = keep(await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "hi"}))
    # Invalid requests must not echo the key back either (FastAPI's default 422 would).
    keep(
        await api.post(
            PROVIDERS, json={"name": unique("bad"), "kind": "openai_compatible", "api_key": secret}
        ),
        422,
    )
    keep(await api.patch(f"{PROVIDERS}/{pid}", json={"api_key": secret, "base_url": "x"}), 422)
    keep(await api.post(PROVIDERS, json={"name": "", "kind": "openai", "api_key": secret}), 422)

    # The test is real: the key was sent to the provider on both the validation and the chat.
    assert f"Bearer {secret}" in _auth_headers_seen(fake_llm, agent["model"])
    assert any(
        r["path"] == "/v1/models" and r["headers"].get("authorization") == f"Bearer {secret}"
        for r in fake_llm.requests
    )
    assert created["api_key_hint"] == secret[-4:]

    for text in answers:
        assert secret not in text
    assert caplog.records, "logs were not captured"
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in json.dumps(record.__dict__, default=repr)
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() not in caplog.text

    raw, decoded = await _history_text(client, tested["workflow_id"])
    assert "echo: hi" in decoded  # the decoding works: the model's answer is found
    assert secret not in raw
    assert secret not in decoded


async def test_wrong_key_stays_out_of_failed_workflow_history(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = f"sk-wrong-{unique('key')}"
    created = await api.post(
        PROVIDERS,
        json={
            "name": unique("wrong"),
            "kind": "openai_compatible",
            "base_url": fake_llm.base_url,
            "api_key": wrong,
        },
    )
    agent = await make_agent(api, created.json()["id"])
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "hi"})
    assert response.status_code == 502
    assert wrong not in response.text
    assert f"Bearer {wrong}" in _auth_headers_seen(fake_llm, agent["model"])
    workflow_id = response.json()["detail"].rsplit("workflow ", 1)[1].rstrip(")")
    raw, decoded = await _history_text(client, workflow_id)
    assert "Incorrect API key provided" in decoded  # the failure details were decoded
    assert wrong not in raw
    assert wrong not in decoded
    assert wrong not in caplog.text
