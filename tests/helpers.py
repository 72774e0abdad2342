"""Small builders the API tests share."""

from collections.abc import Iterator
from typing import Any

import httpx
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI


async def make_provider(
    api: httpx.AsyncClient, fake: FakeOpenAI, *, api_key: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A provider pointing at the fake server, holding its key unless told otherwise."""
    body = {
        "name": unique("prov"),
        "kind": "openai_compatible",
        "base_url": fake.base_url,
        "api_key": api_key if api_key is not None else fake.api_key,
        **extra,
    }
    response = await api.post("/api/v1/providers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def make_agent(api: httpx.AsyncClient, provider_id: int, **extra: Any) -> dict[str, Any]:
    """An agent version on a unique fake model, so scripts never collide between tests."""
    body = {
        "name": unique("agent"),
        "provider_id": provider_id,
        "model": unique("fake-model"),
        "system_prompt": "You are terse.",
        "temperature": 0.2,
        **extra,
    }
    response = await api.post("/api/v1/agents", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere in a protobuf message (inputs, results, summaries, failures, memo)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if isinstance(value, Message):
            yield from payloads_in(value)
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        for item in value.values() if is_map else value:
            if isinstance(item, Message):
                yield from payloads_in(item)


async def decoded_history(client: Client, workflow_id: str) -> list[HistoryEvent]:
    """A workflow's events with every payload opened by the client's codec (Temporal stores them
    encrypted), as a worker sees them."""
    events = list((await client.get_workflow_handle(workflow_id).fetch_history()).events)
    codec = client.data_converter.payload_codec
    if codec is not None:
        payloads = [p for event in events for p in payloads_in(event)]
        for stored, opened in zip(payloads, await codec.decode(payloads), strict=True):
            stored.CopyFrom(opened)
    return events
