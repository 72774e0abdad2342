"""Long agent conversations inside Temporal's limits (core/payload_blobs.py): an agent loop of a
hundred tool calls, each returning 48 KB, finishes with a history that grows by a small, steady
amount per turn instead of carrying the whole conversation in every model request; no model
request or tool call is repeated; a 3 MB model answer (over Temporal's 2 MB payload limit) is
offloaded and its node succeeds; deleting the execution deletes the pieces only it referred to."""

import json
from typing import Any

import httpx
from sqlmodel import col, func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from core.db import session_scope
from core.models import PayloadBlobLink
from core.settings import Settings
from tests.api.dag_helpers import make_dag, start, wait_for
from tests.api.mcp_helpers import notes_server
from tests.fakes.mcp_server import NotesServer
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

CALLS = 100
CLOSED = {"succeeded", "failed", "cancelled", "suspended"}


def reader(tool: str, pages: int) -> Any:
    """A model that reads `pages` pages one call at a time, then says how many it read."""

    def handle(body: dict[str, Any]) -> dict[str, Any]:
        read = sum(1 for m in body["messages"] if m["role"] == "tool")
        if read >= pages:
            return {"role": "assistant", "content": f"read {read} pages"}
        call = {
            "id": f"call_{read}",
            "type": "function",
            "function": {"name": tool, "arguments": json.dumps({"page": read})},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    return handle


async def history_bytes(client: Client, history: WorkflowHistory) -> tuple[int, int]:
    """(bytes of the history as kept, bytes its activity inputs and results would take inline)."""
    kept = sum(event.ByteSize() for event in history.events)
    codec = client.data_converter.payload_codec
    assert codec is not None
    inline = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            payloads = event.activity_task_scheduled_event_attributes.input.payloads
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            payloads = event.activity_task_completed_event_attributes.result.payloads
        else:
            continue
        inline += sum(p.ByteSize() for p in await codec.decode(payloads))
    return kept, inline


async def test_a_hundred_call_loop_keeps_a_small_history_and_repeats_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, notes: NotesServer, client: Client
) -> None:
    name = await notes_server(api, notes, approval="never")
    tool = f"{name}__read_page"
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool], max_requests=CALLS + 10)
    fake_llm.handlers[agent["model"]] = reader(tool, CALLS)
    dag = await make_dag(api, {"nodes": [{"id": "read", "agent": agent["name"], "prompt": "Read it all."}]})
    before = notes.calls["read_page"]
    execution_id = await start(api, dag["id"])
    body = await wait_for(api, execution_id, CLOSED, within_s=240)
    assert body["status"] == "succeeded", body
    assert body["nodes"][0]["output"] == f"read {CALLS} pages"
    assert len(fake_llm.calls(agent["model"])) == CALLS + 1  # no model request repeated
    assert notes.calls["read_page"] - before == CALLS  # no tool call repeated
    history = await client.get_workflow_handle(execution_id).fetch_history()
    kept, inline = await history_bytes(client, history)
    print(f"history: {kept} bytes kept ({kept / CALLS:.0f} per turn), {inline} bytes of payloads inline")
    assert kept < 1_000_000, kept  # about 5 KB per turn, whatever the conversation's length
    assert inline > 3 * kept  # what the model requests carried, had they stayed inline


async def test_a_3_mb_answer_is_offloaded_and_deleting_the_execution_deletes_its_pieces(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    answer = "a long answer. " * (3 * 1024 * 1024 // 15)
    fake_llm.handlers[agent["model"]] = lambda _body: {"role": "assistant", "content": answer}
    dag = await make_dag(api, {"nodes": [{"id": "say", "agent": agent["name"], "prompt": "Say a lot."}]})
    execution_id = await start(api, dag["id"])
    body = await wait_for(api, execution_id, CLOSED, within_s=60)
    assert body["status"] == "succeeded", body
    node = body["nodes"][0]
    assert node["artifact"], node  # the 3 MB answer went through Temporal as stored pieces

    async def links() -> int:
        async with session_scope(settings) as session:
            query = select(func.count()).select_from(PayloadBlobLink)
            return int(
                (await session.exec(query.where(col(PayloadBlobLink.workflow_id) == execution_id))).one()
            )

    assert await links() > 0
    deleted = await api.delete(f"/api/v1/dag-executions/{execution_id}")
    assert deleted.status_code == 204, deleted.text
    assert await links() == 0
