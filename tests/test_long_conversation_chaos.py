"""kill -9 of the worker in the middle of a hundred-call agent loop whose tool returns 48 KB,
under the real `make run` supervisor: the loop finishes after the restart, from where it was (a
completed model request or tool call is not made again; only the one in flight at the kill may
be), and its history stays as small as without the kill (core/payload_blobs.py)."""

import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client

from core.settings import Settings
from core.temporal import connect
from tests.api.dag_helpers import make_dag, start
from tests.api.test_long_conversations import reader
from tests.fakes.mcp_server import NotesServer, url
from tests.fakes.mcp_server import start as serve_notes
from tests.fakes.mcp_server import stop as stop_notes
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.stack import stack_api, until

pytestmark = pytest.mark.slow

CALLS = 100


async def test_a_worker_killed_mid_loop_finishes_it_without_repeating_what_was_done(
    database_url: str, settings: Settings, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    notes = NotesServer()
    server = serve_notes(notes)
    try:
        async with stack_api(tmp_path, database_url, settings) as (launcher, http):
            name = f"pages{os.getpid()}"
            registered = await http.post(
                "/api/v1/mcp-servers",
                json={"name": name, "transport": "http", "url": url(notes), "approval": "never"},
            )
            assert registered.status_code == 201, registered.text
            tool = f"{name}__read_page"
            provider = await make_provider(http, fake_llm)
            agent = await make_agent(http, provider["id"], tools=[tool], max_requests=CALLS + 10)
            fake_llm.handlers[agent["model"]] = reader(tool, CALLS)
            dag = await make_dag(
                http, {"nodes": [{"id": "read", "agent": agent["name"], "prompt": "Read it."}]}
            )
            execution_id = await start(http, dag["id"])

            await until(lambda: notes.calls["read_page"] >= 40, "forty pages read", launcher, 120)
            os.kill(launcher.pids("worker")[-1], signal.SIGKILL)
            await until(lambda: len(launcher.pids("worker")) > 1, "the worker's restart", launcher, 60)

            async def closed() -> bool:
                body = (await http.get(f"/api/v1/dag-executions/{execution_id}")).json()
                return body["status"] in {"succeeded", "failed", "cancelled", "suspended"}

            await until(closed, "the loop to finish", launcher, 240)
            body = (await http.get(f"/api/v1/dag-executions/{execution_id}")).json()
            temporal: Client = await connect(
                settings.model_copy(update={"temporal_address": launcher.temporal_target})
            )
            history = await temporal.get_workflow_handle(execution_id).fetch_history()
    finally:
        stop_notes(notes, server)
    assert body["status"] == "succeeded", body
    assert body["nodes"][0]["output"] == f"read {CALLS} pages"
    pages = Counter(args["page"] for tool_name, args in notes.arguments if tool_name == "read_page")
    assert sorted(pages) == list(range(CALLS))  # every page, in one loop
    assert sum(pages.values()) <= CALLS + 1, pages.most_common(3)  # at most the call in flight again
    requests = fake_llm.calls(agent["model"])
    assert CALLS + 1 <= len(requests) <= CALLS + 2  # at most the request in flight again
    kept = sum(event.ByteSize() for event in history.events)
    assert kept < 1_200_000, kept
