"""MCP Tasks (SEP-2663): a call our Streamable HTTP server runs as a task is polled on durable
timers until it ends, through the API. The call itself is one short activity (the task's handle),
each poll another, so nothing holds an activity slot while the tool works; the task's question
goes to a person and back with `tasks/update`; a failing tool fails the node with its text;
cancelling the execution cancels the task on the server; an agent's loop follows a task too."""

import asyncio

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from tests.api.dag_helpers import make_dag, start, wait_closed, wait_node
from tests.api.mcp_helpers import agent_script, node, notes_server
from tests.fakes.mcp_server import NotesServer
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, load, record, replay_all, replayer
from worker import WORKFLOWS

KEPT = HISTORIES / "dag_mcp_task.json"


def scheduled(history: WorkflowHistory, activity: str) -> list[int]:
    """Event ids of the scheduled activities of one type."""
    return [
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity
    ]


async def test_a_task_is_polled_on_timers_to_its_result_holding_no_activity(
    api: httpx.AsyncClient, notes: NotesServer, client: Client
) -> None:
    name = await notes_server(api, notes, approval="never")
    dag = await make_dag(api, {"nodes": [node("work", f"{name}__long_job", seconds=2.5)]})
    before = notes.calls["long_job"], notes.tasks.requests["get"]
    execution_id = await start(api, dag["id"])
    # While the tool works, no activity is pending: the run sleeps on a timer between polls.
    handle = client.get_workflow_handle(execution_id)
    idle = 0
    for _ in range(20):
        await asyncio.sleep(0.1)
        description = await handle.describe()
        idle += not description.raw_description.pending_activities
    assert idle >= 10, f"an activity was pending in {20 - idle} of 20 looks while the task ran"
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert body["nodes"][0]["output"] == {"result": "worked 2.5 s"}, body["nodes"][0]
    assert notes.calls["long_job"] == before[0] + 1  # called once; the rest were polls
    history = await handle.fetch_history()
    assert len(scheduled(history, "mcp_call_tool")) == 1
    polls = scheduled(history, "mcp_get_task")
    assert polls and notes.tasks.requests["get"] - before[1] == len(polls)
    timers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert len(timers) == len(polls)  # one durable timer before each poll
    # Polls slow down (1 s, 1.5 s, ...): a 2.5-second job takes two or three.
    assert len(polls) <= 3, len(polls)
    record(KEPT, history)
    await replay_all(replayer(*WORKFLOWS), [history])


async def test_the_kept_task_history_replays() -> None:
    await replay_all(replayer(*WORKFLOWS), [load(KEPT)])


async def test_a_tasks_question_is_answered_through_the_api(
    api: httpx.AsyncClient, notes: NotesServer
) -> None:
    name = await notes_server(api, notes, approval="never")
    dag = await make_dag(api, {"nodes": [node("job", f"{name}__confirm_job", item="J-7")]})
    updates = notes.tasks.requests["update"]
    execution_id = await start(api, dag["id"])
    waiting = await wait_node(api, execution_id, "job", "waiting_approval")
    asked = waiting["nodes"][0]
    assert asked["question"]["message"] == "Who confirms the job J-7?", asked
    given = await api.post(
        f"/api/v1/dag-executions/{execution_id}/answer",
        json={"node_id": "job", "action": "accept", "content": {"name": "Ada"}},
    )
    assert given.status_code == 200, given.text
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert body["nodes"][0]["output"] == "job J-7 confirmed by Ada", body["nodes"][0]
    assert notes.tasks.requests["update"] == updates + 1  # answered once, though polled again


async def test_a_tool_failing_in_its_task_fails_the_node_with_its_text(
    api: httpx.AsyncClient, notes: NotesServer
) -> None:
    name = await notes_server(api, notes, approval="never")
    dag = await make_dag(
        api, {"on_failure": "fail", "nodes": [node("work", f"{name}__long_job", seconds=-1)]}
    )
    body = await wait_closed(api, await start(api, dag["id"]))
    assert body["status"] == "failed", body
    error = body["nodes"][0]["error"]
    assert "McpToolFailed" in error and "seconds must not be negative" in error, error


async def test_cancelling_the_execution_cancels_the_task_on_the_server(
    api: httpx.AsyncClient, notes: NotesServer
) -> None:
    name = await notes_server(api, notes, approval="never")
    dag = await make_dag(api, {"nodes": [node("work", f"{name}__long_job", seconds=120)]})
    known = set(notes.tasks.tasks)
    execution_id = await start(api, dag["id"])
    for _ in range(100):
        if set(notes.tasks.tasks) - known:
            break
        await asyncio.sleep(0.1)
    (task_id,) = set(notes.tasks.tasks) - known
    await wait_node(api, execution_id, "work", "running")
    cancelled = await api.post(f"/api/v1/dag-executions/{execution_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    body = await wait_closed(api, execution_id)
    assert body["status"] == "cancelled", body
    for _ in range(50):
        if task_id in notes.tasks.cancelled:
            break
        await asyncio.sleep(0.1)
    assert notes.tasks.tasks[task_id]["status"] == "cancelled"


async def test_an_agent_follows_a_task_in_its_loop(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, notes: NotesServer
) -> None:
    name = await notes_server(api, notes, approval="never")
    tool = f"{name}__long_job"
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool])
    fake_llm.handlers[agent["model"]] = agent_script(tool, {"seconds": 1})
    dag = await make_dag(api, {"nodes": [{"id": "ask", "agent": agent["name"], "prompt": "Work."}]})
    polls = notes.tasks.requests["get"]
    body = await wait_closed(api, await start(api, dag["id"]))
    assert body["status"] == "succeeded", body
    assert "worked 1 s" in body["nodes"][0]["output"], body["nodes"][0]
    assert notes.tasks.requests["get"] > polls
