"""Long agent conversations inside Temporal's limits (core/payload_blobs.py): an agent loop of a
hundred tool calls, each returning 48 KB, finishes with a history that grows by a small, steady
amount per turn instead of carrying the whole conversation in every model request; no model
request or tool call is repeated; a 3 MB model answer (over Temporal's 2 MB payload limit) is
offloaded and its node succeeds; deleting the execution deletes the pieces only it referred to; a
loop whose workflow is due to continue as new stops at a turn and the next run goes on with it."""

import json
from typing import Any

import httpx
from sqlmodel import col, func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from core.db import session_scope
from core.models import PayloadBlobLink
from core.settings import Settings
from tests.api.dag_direct import start_direct
from tests.api.dag_helpers import make_dag, start, wait_for
from tests.api.mcp_helpers import notes_server
from tests.fakes.mcp_server import NotesServer
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, load, record, replay_all, replayer
from worker import WORKFLOWS

CALLS = 100
PAUSED = HISTORIES / "dag_agent_loop_paused.json"
RESUMED = HISTORIES / "dag_agent_loop_resumed.json"
CLOSED = {"succeeded", "failed", "cancelled", "suspended"}


def reader(tool: str, pages: int, argument: str = "page") -> Any:
    """A model that reads `pages` pages one call at a time, then says how many it read."""

    def handle(body: dict[str, Any]) -> dict[str, Any]:
        read = sum(1 for m in body["messages"] if m["role"] == "tool")
        if read >= pages:
            return {"role": "assistant", "content": f"read {read} pages"}
        value: Any = read if argument == "page" else f"w{read}"
        call = {
            "id": f"call_{read}",
            "type": "function",
            "function": {"name": tool, "arguments": json.dumps({argument: value})},
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


async def test_a_long_loop_continues_as_new_between_turns_and_repeats_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, notes: NotesServer, client: Client, settings: Settings
) -> None:
    """The history budget: with the run's history bounded (`events_per_run`, as Temporal's own
    suggestion does at its limits), a 40-call loop hands over to new runs between turns, carrying
    its conversation, and finishes as if nothing happened."""
    calls = 40
    name = await notes_server(api, notes, approval="never")
    tool = f"{name}__read_page"
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool], max_requests=calls + 1)
    fake_llm.handlers[agent["model"]] = reader(tool, calls)
    dag = await make_dag(api, {"nodes": [{"id": "read", "agent": agent["name"], "prompt": "Read it all."}]})
    before = notes.calls["read_page"]
    execution_id = await start_direct(client, settings, dag, events_per_run=150)
    body = await wait_for(api, execution_id, CLOSED, within_s=240)
    assert body["status"] == "succeeded", body
    node = body["nodes"][0]
    assert node["output"] == f"read {calls} pages"
    assert node["attempts"] == 1
    assert len(fake_llm.calls(agent["model"])) == calls + 1  # no model request repeated
    assert notes.calls["read_page"] - before == calls  # no tool call repeated
    assert node["usage"]["requests"] == calls + 1  # each request charged once, across runs
    # exactly at its limit of requests: the carried conversation counts against it
    runs = [run async for run in client.list_workflows(f'WorkflowId = "{execution_id}"')]
    assert len(runs) >= 4, len(runs)  # the loop was handed over mid-way, several times
    lengths = []
    for run in runs:
        history = await client.get_workflow_handle(execution_id, run_id=run.run_id).fetch_history()
        lengths.append(len(history.events))
    print(f"{len(runs)} runs of {lengths} events")
    assert max(lengths) < 150 + 40, lengths  # a turn past the budget at most


async def test_a_loop_paused_and_resumed_replays_from_its_kept_histories(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, notes: NotesServer, client: Client, settings: Settings
) -> None:
    """The first run of a paused loop and the run that resumes it, kept (small tool results, so
    no stored pieces) and replayed: the pause and the resume are deterministic."""
    name = await notes_server(api, notes, approval="never")
    tool = f"{name}__lookup"
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool])
    fake_llm.handlers[agent["model"]] = reader(tool, 8, argument="word")
    dag = await make_dag(api, {"nodes": [{"id": "look", "agent": agent["name"], "prompt": "Look up words."}]})
    execution_id = await start_direct(client, settings, dag, events_per_run=40)
    body = await wait_for(api, execution_id, CLOSED, within_s=120)
    assert body["status"] == "succeeded", body
    assert body["nodes"][0]["output"] == "read 8 pages"
    runs = [run async for run in client.list_workflows(f'WorkflowId = "{execution_id}"')]
    runs.sort(key=lambda run: run.start_time)
    assert len(runs) >= 2, len(runs)
    first, second = [
        await client.get_workflow_handle(execution_id, run_id=run.run_id).fetch_history() for run in runs[:2]
    ]
    record(PAUSED, first)
    record(RESUMED, second)
    await replay_all(replayer(*WORKFLOWS), [first, second])


async def test_the_kept_paused_and_resumed_loop_histories_replay() -> None:
    await replay_all(replayer(*WORKFLOWS), [load(PAUSED), load(RESUMED)])
