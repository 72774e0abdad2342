"""kill -9 of the worker in the middle of an MCP call, under the real `make run` supervisor: the
call in flight is not sent again (its outcome is unknown, so the node fails for `on_failure` to
decide), the call that completed before the kill is not repeated, the stdio server the killed
worker had started does not outlive it, and a call the server runs as a task (MCP Tasks) is
polled to its result by the restarted worker without being sent again."""

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from core.settings import Settings
from tests.fakes.mcp_server import NotesServer, url
from tests.fakes.mcp_server import start as serve_notes
from tests.fakes.mcp_server import stop as stop_notes
from tests.stack import stack_api, until

pytestmark = pytest.mark.slow


def _marked(marker: str) -> list[psutil.Process]:
    """Processes whose environment carries this test's marker (its stdio MCP servers)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("GOALFLOW_MCP_TEST") == marker:
                found.append(process)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


async def test_a_worker_killed_mid_call_sends_no_call_twice_and_leaks_no_server(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    notes = NotesServer()
    server = serve_notes(notes)
    marker = uuid.uuid4().hex
    try:
        async with stack_api(tmp_path, database_url, settings) as (launcher, http):
            names = await _register(http, notes, marker)
            dag = await http.post("/api/v1/dags", json={"spec": _spec(*names)})
            assert dag.status_code == 201, dag.text
            started = await http.post("/api/v1/execute-dag", json={"dag_id": dag.json()["id"]})
            assert started.status_code == 202, started.text
            execution_id = started.json()["id"]

            await until(lambda: notes.calls["count_to"] == 1, "the long call in flight", launcher, 90)
            stdio = _marked(marker)
            assert stdio, "the worker started the stdio server"
            tasks_at_kill = [task["status"] for task in notes.tasks.tasks.values()]
            os.kill(launcher.pids("worker")[-1], signal.SIGKILL)
            await until(lambda: len(launcher.pids("worker")) > 1, "the worker's restart", launcher, 60)

            async def closed() -> bool:
                body = (await http.get(f"/api/v1/dag-executions/{execution_id}")).json()
                return body["status"] in {"succeeded", "failed", "cancelled"}

            await until(closed, "the execution to close", launcher, 180)
            body = (await http.get(f"/api/v1/dag-executions/{execution_id}")).json()
            await asyncio.to_thread(psutil.wait_procs, stdio, 10)
            leaked = [p.pid for p in stdio if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        await asyncio.to_thread(stop_notes, notes, server)
    nodes = {n["id"]: n for n in body["nodes"]}
    assert nodes["first"]["status"] == "succeeded" and nodes["now"]["status"] == "succeeded", body
    assert nodes["count"]["status"] == "failed", body
    assert tasks_at_kill == ["working"]  # the task outlived the worker that started it...
    assert nodes["job"]["status"] == "succeeded" and nodes["job"]["output"] == {"result": "worked 6 s"}, body
    assert notes.calls["long_job"] == 1  # ...and the restarted worker polled it, not called again
    assert "McpOutcomeUnknown" in nodes["count"]["error"], nodes["count"]
    assert notes.calls["count_to"] == 1  # the call cut by the kill was not sent again
    assert notes.calls["append_note"] == 1  # the completed call was not repeated
    assert leaked == [], f"stdio servers of the killed worker still running: {leaked}"


async def _register(http: httpx.AsyncClient, notes: NotesServer, marker: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:6]
    notes_name, time_name = f"notes{suffix}", f"time{suffix}"
    for body in (
        {"name": notes_name, "transport": "http", "url": url(notes)},
        {
            "name": time_name,
            "transport": "stdio",
            "command": sys.executable,
            "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
            "env": {"GOALFLOW_MCP_TEST": marker},
        },
    ):
        response = await http.post("/api/v1/mcp-servers", json=body)
        assert response.status_code == 201, response.text
    return notes_name, time_name


def _spec(notes: str, time: str) -> dict[str, Any]:
    return {
        "name": f"mcp-chaos-{uuid.uuid4().hex[:6]}",
        "on_failure": "continue",
        "nodes": [
            {"id": "first", "tool": f"{notes}__append_note", "input": {"text": "before the kill"}},
            {"id": "now", "tool": f"{time}__get_current_time", "input": {"timezone": "UTC"}},
            {"id": "count", "tool": f"{notes}__count_to", "input": {"n": 20}, "depends_on": ["first", "now"]},
            {"id": "job", "tool": f"{notes}__long_job", "input": {"seconds": 6}},
        ],
    }
