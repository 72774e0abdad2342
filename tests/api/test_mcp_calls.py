"""MCP tools called durably: from DAG tool nodes and from an agent's loop, through the API, against
the real `mcp-server-time` (stdio) and our own Streamable HTTP server. Each call is one activity;
a destructive tool waits for a person first (as a node, or in the middle of an agent's run);
a call whose answer was lost is not sent again; a killed server is started again on the next call;
progress reaches the activity's heartbeat."""

import asyncio
import json
import uuid
from typing import Any

import httpx
import psutil
import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ApplicationError

from contracts.dag import DagSpec, RunDagInput
from core.db import session_scope
from core.models import McpServer
from core.settings import Settings
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_node
from tests.api.mcp_helpers import (
    agent_script,
    node,
    notes_server,
    register,
    server_name,
    time_server,
)
from tests.fakes.mcp_server import NotesServer, url
from tests.fakes.mcp_server import start as serve_notes
from tests.fakes.mcp_server import stop as stop_notes
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, load, record, replay_all, replayer
from worker import WORKFLOWS
from workflows.dag import DagWorkflow

CALL_ACTIVITY = "mcp_call_tool"
KEPT = HISTORIES / "dag_mcp_agent_approval.json"


def time_servers() -> list[psutil.Process]:
    """The `mcp-server-time` processes this test process (its worker) started."""
    return [
        p for p in psutil.Process().children(recursive=True) if "mcp_server_time" in " ".join(p.cmdline())
    ]


async def activity_count(client: Client, execution_id: str) -> int:
    history = await client.get_workflow_handle(execution_id).fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == CALL_ACTIVITY
    )


async def test_a_dag_node_calls_a_stdio_server_and_feeds_the_next_node(api: httpx.AsyncClient) -> None:
    name = server_name("time")
    await register(api, time_server(name))
    dag = await make_dag(
        api,
        {
            "nodes": [
                {"id": "now", "tool": f"{name}__get_current_time", "input": {"timezone": "Europe/Paris"}},
                {
                    "id": "convert",
                    "tool": f"{name}__convert_time",
                    "input": {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
                    "depends_on": ["now"],
                },
            ]
        },
    )
    body = await wait_closed(api, await start(api, dag["id"]))
    assert body["status"] == "succeeded", body
    nodes = {n["id"]: n for n in body["nodes"]}
    assert "Europe/Paris" in json.dumps(nodes["now"]["output"])
    assert "21:00" in json.dumps(nodes["convert"]["output"])


async def test_the_tools_own_error_fails_the_node_once_with_its_text(
    api: httpx.AsyncClient, client: Client
) -> None:
    name = server_name("time")
    await register(api, time_server(name))
    bad = node("bad", f"{name}__get_current_time", timezone="Mars/Olympus")
    dag = await make_dag(api, {"on_failure": "fail", "nodes": [bad]})
    execution_id = await start(api, dag["id"])
    body = await wait_closed(api, execution_id)
    failed = body["nodes"][0]
    assert failed["status"] == "failed" and "McpToolFailed" in failed["error"]
    assert "Mars/Olympus" in failed["error"] and failed["attempts"] == 1
    assert await activity_count(client, execution_id) == 1


async def test_a_destructive_tool_waits_for_approval_then_runs_once(
    api: httpx.AsyncClient, notes: NotesServer, client: Client
) -> None:
    name = await notes_server(api, notes)
    notes.notes[:] = ["keep", "drop me"]
    before = notes.calls["delete_note"]
    dag = await make_dag(
        api, {"nodes": [{"id": "drop", "tool": f"{name}__delete_note", "input": {"index": 1}}]}
    )
    execution_id = await start(api, dag["id"])
    await wait_node(api, execution_id, "drop", "waiting_approval")
    await asyncio.sleep(0.5)
    assert notes.calls["delete_note"] == before  # nothing sent while it waits
    approved = await api.post(
        f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "drop", "comment": "fine"}
    )
    assert approved.status_code == 200, approved.text
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert notes.calls["delete_note"] == before + 1
    assert notes.notes == ["keep"]
    assert await activity_count(client, execution_id) == 1


async def test_approval_never_lets_a_destructive_tool_run_without_asking(
    api: httpx.AsyncClient, notes: NotesServer
) -> None:
    name = await notes_server(api, notes, approval="never")
    notes.notes[:] = ["a"]
    dag = await make_dag(
        api, {"nodes": [{"id": "drop", "tool": f"{name}__delete_note", "input": {"index": 0}}]}
    )
    body = await wait_closed(api, await start(api, dag["id"]))
    assert body["status"] == "succeeded", body
    assert notes.notes == []


async def test_a_non_idempotent_call_whose_answer_is_lost_is_not_sent_again(
    api: httpx.AsyncClient, notes: NotesServer, client: Client
) -> None:
    name = await notes_server(api, notes, timeout_s=1.5)
    before = notes.calls["count_to"]
    dag = await make_dag(
        api,
        {
            "on_failure": "fail",
            "nodes": [
                {
                    "id": "count",
                    "tool": f"{name}__count_to",
                    "input": {"n": 10},
                    "retry": {"max_attempts": 3, "initial_interval_s": 0.1},
                }
            ],
        },
    )
    execution_id = await start(api, dag["id"])
    body = await wait_closed(api, execution_id)
    node = body["nodes"][0]
    assert node["status"] == "failed", body
    assert "McpOutcomeUnknown" in node["error"], node["error"]
    assert notes.calls["count_to"] == before + 1  # sent once, never again


async def test_a_killed_stdio_server_is_started_again_on_the_next_call(
    api: httpx.AsyncClient,
) -> None:
    name = server_name("time")
    await register(api, time_server(name))
    dag = await make_dag(
        api, {"nodes": [{"id": "now", "tool": f"{name}__get_current_time", "input": {"timezone": "UTC"}}]}
    )
    first = await wait_closed(api, await start(api, dag["id"]))
    assert first["status"] == "succeeded", first
    servers = time_servers()
    assert servers, "the worker keeps its stdio server running between calls"
    for process in servers:
        process.kill()
    second = await wait_closed(api, await start(api, dag["id"]))
    assert second["status"] == "succeeded", second
    again = [
        p for p in psutil.Process().children(recursive=True) if "mcp_server_time" in " ".join(p.cmdline())
    ]
    assert again and {p.pid for p in again}.isdisjoint({p.pid for p in servers})


async def test_an_http_server_restart_is_healed_and_health_reports_it_meanwhile(
    api: httpx.AsyncClient,
) -> None:
    fake = NotesServer()
    server = serve_notes(fake)
    name = await notes_server(api, fake)
    dag = await make_dag(api, {"on_failure": "fail", "nodes": [node("look", f"{name}__lookup", word="w")]})
    assert (await wait_closed(api, await start(api, dag["id"])))["status"] == "succeeded"
    await asyncio.to_thread(stop_notes, fake, server)
    down = await wait_closed(api, await start(api, dag["id"]))
    assert down["status"] == "failed" and "McpServerUnavailable" in down["nodes"][0]["error"], down
    ready = (await api.get("/health/ready")).json()
    mine = next(s for s in ready["checks"]["mcp_servers"]["servers"] if s["name"] == name)
    assert mine["reachable"] is False and mine["last_error"] and mine["tools"] >= 4
    assert "mcp_servers" in ready["degraded"]
    server = serve_notes(fake, port=fake.port)  # the server comes back where it was
    try:
        back = await wait_closed(api, await start(api, dag["id"]))
        assert back["status"] == "succeeded", back
        ready = (await api.get("/health/ready")).json()
        mine = next(s for s in ready["checks"]["mcp_servers"]["servers"] if s["name"] == name)
        assert mine["reachable"] is True and mine["last_error"] is None
    finally:
        server.should_exit = True


async def test_progress_reaches_the_heartbeat(
    api: httpx.AsyncClient, notes: NotesServer, client: Client
) -> None:
    name = await notes_server(api, notes, approval="never")
    dag = await make_dag(api, {"nodes": [{"id": "count", "tool": f"{name}__count_to", "input": {"n": 6}}]})
    execution_id = await start(api, dag["id"])
    handle = client.get_workflow_handle(execution_id)
    seen: list[Any] = []
    for _ in range(60):
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if pending.heartbeat_details.payloads:
                seen.append(pending.heartbeat_details)
        if seen:
            break
        await asyncio.sleep(0.1)
    assert seen, "no heartbeat details while the tool reported progress"
    details = await client.data_converter.decode(seen[-1].payloads)
    assert details[0]["total"] == 6 and "counted" in details[0]["message"]
    shown = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()["nodes"][0]
    assert shown["status"] == "running" and shown["progress"]["total"] == 6, shown
    assert shown["progress"]["message"].startswith("counted"), shown
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body


async def test_an_agents_call_shows_its_progress_on_the_agent_node(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, notes: NotesServer
) -> None:
    name = await notes_server(api, notes, approval="never")
    tool = f"{name}__count_to"
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool])
    fake_llm.handlers[agent["model"]] = agent_script(tool, {"n": 6})
    dag = await make_dag(api, {"nodes": [{"id": "count", "agent": agent["name"], "prompt": "Count."}]})
    execution_id = await start(api, dag["id"])
    shown: dict[str, Any] = {}
    for _ in range(60):
        shown = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()["nodes"][0]
        if shown.get("progress"):
            break
        await asyncio.sleep(0.1)
    assert shown["status"] == "running" and shown["progress"]["total"] == 6, shown
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body


async def test_a_tool_a_server_stopped_listing_fails_the_next_run_readably(
    api: httpx.AsyncClient, notes: NotesServer, client: Client, settings: Settings
) -> None:
    name = await notes_server(api, notes)
    spec = {"name": "look", "nodes": [node("look", f"{name}__lookup", word="x")]}
    dag = await make_dag(api, spec)
    async with session_scope(settings) as session:
        row = (await session.exec(select(McpServer).where(McpServer.name == name))).one()
        row.tools = [t for t in row.tools if t["tool"] != "lookup"]
        session.add(row)
        await session.commit()
    refused = await api.post("/api/v1/execute-dag", json={"dag_id": dag["id"]})
    assert refused.status_code == 422 and f"unknown tool '{name}__lookup'" in refused.text
    # A run that starts without the API's check (a schedule's, say) fails when it pins its tools.
    handle = await client.start_workflow(
        DagWorkflow.run,
        RunDagInput(spec=DagSpec.model_validate(spec)),
        id=f"dag-mcp-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "McpToolUnavailable"
    assert "no longer lists a tool 'lookup'" in cause.message


async def test_an_agent_calls_an_mcp_tool_in_its_loop(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    name = server_name("time")
    await register(api, time_server(name))
    tool = f"{name}__get_current_time"
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool])
    fake_llm.handlers[agent["model"]] = agent_script(tool, {"timezone": "Asia/Tokyo"})
    dag = await make_dag(
        api, {"nodes": [{"id": "ask", "agent": agent["name"], "prompt": "What time is it?"}]}
    )
    execution_id = await start(api, dag["id"])
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert "Asia/Tokyo" in body["nodes"][0]["output"]
    offered = fake_llm.calls(agent["model"])[0]["body"]["tools"]
    assert [t["function"]["name"] for t in offered] == [tool]
    assert await activity_count(client, execution_id) == 1


async def test_an_agents_destructive_call_waits_mid_run_for_a_person(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, notes: NotesServer, client: Client
) -> None:
    histories: list[WorkflowHistory] = []
    name = await notes_server(api, notes)
    tool = f"{name}__delete_note"
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool])
    for decision, expected in (("approve", "deleted"), ("reject", "rejected")):
        notes.notes[:] = ["only"]
        before = notes.calls["delete_note"]
        fake_llm.handlers[agent["model"]] = agent_script(tool, {"index": 0})
        dag = await make_dag(api, {"nodes": [{"id": "tidy", "agent": agent["name"], "prompt": "Tidy up."}]})
        execution_id = await start(api, dag["id"])
        waiting = await wait_node(api, execution_id, "tidy", "waiting_approval")
        node = waiting["nodes"][0]
        assert tool in node["waiting_reason"] and '"index": 0' in node["waiting_reason"]
        assert notes.calls["delete_note"] == before
        answer = await api.post(
            f"/api/v1/dag-executions/{execution_id}/{decision}",
            json={"node_id": "tidy", "comment": "by test"},
        )
        assert answer.status_code == 200, answer.text
        body = await wait_closed(api, execution_id)
        assert body["status"] == "succeeded", body
        assert expected in body["nodes"][0]["output"], body["nodes"][0]["output"]
        assert notes.calls["delete_note"] == before + (1 if decision == "approve" else 0)
        histories.append(await client.get_workflow_handle(execution_id).fetch_history())
    # The agent's wait for a person, replayed (and kept: tests/workflows/test_recorded_histories.py).
    record(KEPT, histories[0])
    await replay_all(replayer(*WORKFLOWS), histories)


async def test_the_kept_mcp_history_replays() -> None:
    await replay_all(replayer(*WORKFLOWS), [load(KEPT)])


async def test_a_tools_question_is_answered_through_the_api(
    api: httpx.AsyncClient, notes: NotesServer, client: Client
) -> None:
    name = await notes_server(api, notes)
    for answer, said in (
        ({"action": "accept", "content": {"name": "Ada", "visits": 3}}, "signed by Ada (3 visits)"),
        ({"action": "decline"}, "not signed (decline)"),
    ):
        dag = await make_dag(api, {"nodes": [node("sign", f"{name}__sign_guestbook")]})
        execution_id = await start(api, dag["id"])
        waiting = await wait_node(api, execution_id, "sign", "waiting_approval")
        asked = waiting["nodes"][0]
        assert asked["question"]["message"] == "Who is signing the guestbook?", asked
        assert "name" in asked["question"]["requested_schema"]["properties"]
        assert "Who is signing" in asked["waiting_reason"]
        wrong = await api.post(f"/api/v1/dag-executions/{execution_id}/answer", json={"node_id": "nope"})
        assert wrong.status_code == 422 and "unknown node" in wrong.text
        given = await api.post(
            f"/api/v1/dag-executions/{execution_id}/answer", json={"node_id": "sign", **answer}
        )
        assert given.status_code == 200, given.text
        body = await wait_closed(api, execution_id)
        assert body["status"] == "succeeded", body
        assert body["nodes"][0]["output"] == {"result": said}  # the structured content
        assert await activity_count(client, execution_id) == 2  # asked, then called with the answer
    # A node that waits for approval is not answered, and one not waiting at all either.
    gated = await make_dag(api, {"nodes": [node("drop", f"{name}__delete_note", index=99)]})
    execution_id = await start(api, gated["id"])
    await wait_node(api, execution_id, "drop", "waiting_approval")
    refused = await api.post(f"/api/v1/dag-executions/{execution_id}/answer", json={"node_id": "drop"})
    assert refused.status_code == 409 and "not for an answer" in refused.text
    await api.post(f"/api/v1/dag-executions/{execution_id}/cancel")


async def test_secrets_stay_out_of_the_temporal_store_and_the_logs(
    api: httpx.AsyncClient, client: Client, notes: NotesServer, caplog: pytest.LogCaptureFixture
) -> None:
    name = server_name("sec")
    secret = "header-secret-value-31337"
    await register(
        api, {"name": name, "transport": "http", "url": url(notes), "headers": {"X-Extra": secret}}
    )
    dag = await make_dag(api, {"nodes": [{"id": "look", "tool": f"{name}__lookup", "input": {"word": "w"}}]})
    execution_id = await start(api, dag["id"])
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert any(h.get("x-extra") == secret for h in notes.seen_headers)  # it reached the server
    history = await client.get_workflow_handle(execution_id).fetch_history()
    assert secret not in history.to_json()
    scheduled = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    decoded = ""
    for event in scheduled:
        encoded = event.activity_task_scheduled_event_attributes.input.payloads
        decoded += json.dumps(await client.data_converter.decode(encoded), default=str)
    assert secret not in decoded and "lookup" in decoded
    assert secret not in caplog.text  # the worker's and the API's log lines of this test


async def test_an_agent_test_calls_mcp_tools_and_refuses_what_needs_a_person(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, notes: NotesServer
) -> None:
    time_name = server_name("time")
    await register(api, time_server(time_name))
    notes_name = await notes_server(api, notes)
    provider = await make_provider(api, fake_llm)
    clock = await make_agent(api, provider["id"], tools=[f"{time_name}__get_current_time"])
    fake_llm.handlers[clock["model"]] = agent_script(f"{time_name}__get_current_time", {"timezone": "UTC"})
    tested = await api.post(f"/api/v1/agents/{clock['id']}/test", json={"prompt": "time?"})
    assert tested.status_code == 200, tested.text
    assert '"timezone":"UTC"' in tested.json()["output"].replace(" ", ""), tested.json()
    # An agent test has nobody to ask: the destructive call is refused and the model told why.
    tidy = await make_agent(api, provider["id"], tools=[f"{notes_name}__delete_note"])
    fake_llm.handlers[tidy["model"]] = agent_script(f"{notes_name}__delete_note", {"index": 0})
    before = notes.calls["delete_note"]
    tested = await api.post(f"/api/v1/agents/{tidy['id']}/test", json={"prompt": "tidy"})
    assert tested.status_code == 200, tested.text
    assert "needs a person's approval" in tested.json()["output"], tested.json()
    assert notes.calls["delete_note"] == before


async def test_a_read_only_call_whose_answer_is_lost_is_sent_again(
    api: httpx.AsyncClient, notes: NotesServer
) -> None:
    # The twin of the non-idempotent test above: a read-only tool may be asked again.
    name = await notes_server(api, notes, timeout_s=1)
    before = notes.calls["hang"]
    retried = {**node("wait", f"{name}__hang"), "retry": {"max_attempts": 2, "initial_interval_s": 0.1}}
    dag = await make_dag(api, {"on_failure": "fail", "nodes": [retried]})
    body = await wait_closed(api, await start(api, dag["id"]))
    assert body["status"] == "failed", body
    assert notes.calls["hang"] == before + 2  # both attempts reached the server
