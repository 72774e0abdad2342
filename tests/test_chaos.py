"""Chaos under the real `make run` supervisor: kill -9 the worker in the middle of a model request,
then the Temporal dev server, while two DAGs with agent and tool nodes run. The API stays up, both
DAGs succeed, and every completed side effect happened exactly once: each prompt was answered once
by the fake LLM (the request cut by the kill was aborted, not answered) and each `remember` node
stored one memory row."""

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from core.db import session_scope
from core.models.memory import Memory
from core.settings import Settings
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI, echo
from tests.stack import Availability, Launcher, stack_api, until

pytestmark = pytest.mark.slow

MODEL_SECONDS = 1.5
TAGS = ("run-one", "run-two")


def _spec(agent: str) -> dict[str, Any]:
    return {
        "name": unique("chaos"),
        "max_parallel": 4,
        "params": {"tag": "x"},
        "nodes": [
            {"id": "ask1", "agent": agent, "prompt": "{{params.tag}} first question"},
            {
                "id": "keep1",
                "tool": "remember",
                "depends_on": ["ask1"],
                "input": {"agent": agent, "content": "{{params.tag}} keep1 {{nodes.ask1.output}}"},
            },
            {
                "id": "ask2",
                "agent": agent,
                "prompt": "{{params.tag}} second question",
                "depends_on": ["keep1"],
            },
            {
                "id": "keep2",
                "tool": "remember",
                "depends_on": ["ask2"],
                "input": {"agent": agent, "content": "{{params.tag}} keep2 {{nodes.ask2.output}}"},
            },
            {"id": "sum", "tool": "calculator", "input": {"expression": "6*7"}, "depends_on": ["keep2"]},
        ],
    }


async def _status(http: httpx.AsyncClient, execution_id: str) -> str | None:
    """The execution's status, or None while the stack is healing (Temporal restarting)."""
    try:
        response = await http.get(f"/api/v1/dag-executions/{execution_id}")
    except httpx.TransportError:
        return None
    return str(response.json()["status"]) if response.status_code == 200 else None


async def test_killing_the_worker_and_temporal_mid_dag_loses_nothing_and_repeats_nothing(
    fake_llm: FakeOpenAI, database_url: str, settings: Settings, tmp_path: Path
) -> None:
    model = unique("fake-chaos")
    answered: list[str] = []

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        answered.append(body["messages"][-1]["content"])
        return echo(body)

    fake_llm.slow(model, MODEL_SECONDS)
    fake_llm.handlers[model] = answer
    async with stack_api(tmp_path, database_url, settings, timeout_s=30) as (launcher, http):
        ids = await _start(http, fake_llm, model)
        availability = Availability(launcher.api_url)
        availability.start()
        try:
            await _chaos(launcher, fake_llm, model, answered)
            for execution_id in ids:

                async def closed(execution_id: str = execution_id) -> bool:
                    return await _status(http, execution_id) in {"succeeded", "failed", "cancelled"}

                await until(closed, f"{execution_id} to finish", launcher, 180)
            statuses = [await _status(http, i) for i in ids]
        finally:
            availability.done.set()
            availability.join()
    assert statuses == ["succeeded", "succeeded"], launcher.output
    assert availability.checks > 0 and availability.failures == [], availability.failures
    assert f"worker (pid {launcher.pids('worker')[0]}) killed by SIGKILL" in launcher.output
    assert f"temporal (pid {launcher.pids('temporal')[0]}) killed by SIGKILL" in launcher.output
    # The kill cut a request in flight: the fake saw it aborted, and it was asked again.
    assert model in fake_llm.aborted
    prompts = Counter(answered)
    expected = {f"{tag} {which} question" for tag in TAGS for which in ("first", "second")}
    assert set(prompts) == expected and all(n == 1 for n in prompts.values()), prompts
    async with session_scope(settings) as session:
        rows = (await session.exec(select(Memory).where(col(Memory.agent_name) == model_agent(model)))).all()
    kept = Counter(" ".join(row.content.split()[:2]) for row in rows)
    assert kept == {f"{tag} {node}": 1 for tag in TAGS for node in ("keep1", "keep2")}, kept


def model_agent(model: str) -> str:
    """The agent name used for a model in this test (agents and memories are keyed by it)."""
    return model.replace("fake-", "agent-")


async def _start(http: httpx.AsyncClient, fake: FakeOpenAI, model: str) -> list[str]:
    provider = await http.post(
        "/api/v1/providers",
        json={
            "name": unique("chaos"),
            "kind": "openai_compatible",
            "base_url": fake.base_url,
            "api_key": fake.api_key,
        },
    )
    assert provider.status_code == 201, provider.text
    agent = await http.post(
        "/api/v1/agents",
        json={"name": model_agent(model), "provider_id": provider.json()["id"], "model": model},
    )
    assert agent.status_code == 201, agent.text
    dag = await http.post("/api/v1/dags", json={"spec": _spec(model_agent(model))})
    assert dag.status_code == 201, dag.text
    ids = []
    for tag in TAGS:
        started = await http.post(
            "/api/v1/execute-dag", json={"dag_id": dag.json()["id"], "params": {"tag": tag}}
        )
        assert started.status_code == 202, started.text
        ids.append(str(started.json()["id"]))
    return ids


async def _chaos(launcher: Launcher, fake: FakeOpenAI, model: str, answered: list[str]) -> None:
    """kill -9 the worker while a model request is in flight, then, once the stack made progress
    again, the Temporal dev server between two requests."""
    await until(lambda: fake.in_flight[model] > 0, "a model request in flight", launcher, 90)
    os.kill(launcher.pids("worker")[-1], signal.SIGKILL)
    await until(lambda: len(launcher.pids("worker")) > 1, "the worker's restart", launcher, 60)
    progress = len(answered)
    await until(lambda: len(answered) > progress, "progress after the worker's restart", launcher, 90)
    await until(lambda: fake.in_flight[model] == 0, "a moment between model requests", launcher, 30)
    os.kill(launcher.pids("temporal")[-1], signal.SIGKILL)
    await until(lambda: len(launcher.pids("temporal")) > 1, "Temporal's restart", launcher, 60)
    await asyncio.sleep(0)
