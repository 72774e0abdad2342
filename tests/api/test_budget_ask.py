"""Approval deadlines and token budgets that ask, through REST and the CLI: an execution paused at
its budget goes on after `POST /dag-executions/{id}/budget` (or `python -m cli raise-budget`) with a
budget above what it used; a raise below that is refused and changes nothing."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.api.dag_helpers import make_dag, start, wait_closed, wait_for
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

ROOT = Path(__file__).resolve().parents[2]
PAUSED = "token budget reached: used 36 of 30"
"""Each fake answer costs 18 tokens: two agent nodes reach a budget of 30 before the third starts."""


async def _paused_chain(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> tuple[str, str]:
    """An execution of three agent nodes paused at its budget; its id and the agent's model."""
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    name = agent["name"]
    dag = await make_dag(
        api,
        {
            "max_tokens_per_run": 30,
            "on_budget": "ask",
            "nodes": [
                {"id": "a", "agent": name, "prompt": "one"},
                {"id": "b", "agent": name, "prompt": "two {{nodes.a.output}}", "depends_on": ["a"]},
                {"id": "c", "agent": name, "prompt": "three {{nodes.b.output}}", "depends_on": ["b"]},
            ],
        },
    )
    assert dag["spec"]["on_budget"] == "ask"
    execution_id = await start(api, dag["id"])
    body = await wait_for(api, execution_id, {"suspended", "succeeded", "failed"})
    assert body["status"] == "suspended", body
    assert body["waiting_reason"] == PAUSED and body["max_tokens_per_run"] == 30
    assert body["suspended_node"] is None
    assert {n["id"]: n["status"] for n in body["nodes"]} == {
        "a": "succeeded",
        "b": "succeeded",
        "c": "pending",
    }
    assert len(fake_llm.calls(agent["model"])) == 2
    return execution_id, agent["model"]


async def test_budget_ask_pauses_and_a_raise_through_rest_lets_it_succeed(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    execution_id, model = await _paused_chain(api, fake_llm)
    url = f"/api/v1/dag-executions/{execution_id}/budget"

    refused = await api.post(url, json={"max_tokens_per_run": 36})
    assert refused.status_code == 409, refused.text
    assert "above the 36 tokens" in refused.json()["detail"]
    invalid = await api.post(url, json={"max_tokens_per_run": 0})
    assert invalid.status_code == 422, invalid.text
    unchanged = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
    assert unchanged["status"] == "suspended" and unchanged["max_tokens_per_run"] == 30
    assert len(fake_llm.calls(model)) == 2

    raised = await api.post(url, json={"max_tokens_per_run": 100, "comment": "worth it"})
    assert raised.status_code == 200, raised.text
    assert raised.json()["max_tokens_per_run"] == 100 and raised.json()["waiting_reason"] is None
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    usage = body["usage"]
    assert usage["input_tokens"] + usage["output_tokens"] == 54 and body["max_tokens_per_run"] == 100
    assert len(fake_llm.calls(model)) == 3

    closed = await api.post(url, json={"max_tokens_per_run": 1000})
    assert closed.status_code == 409, closed.text


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=dict(os.environ),  # the session's settings (Temporal address, codec keys)
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_raise_budget_signals_the_paused_execution(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    execution_id, model = await _paused_chain(api, fake_llm)
    low = await _cli("raise-budget", execution_id, "20")
    assert low.returncode == 1, low.stdout + low.stderr
    assert "above the 36 tokens" in low.stderr
    assert (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()["status"] == "suspended"

    done = await _cli("raise-budget", execution_id, "100", "--comment", "from the CLI")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"signalled {execution_id}: token budget 30 -> 100" in done.stdout
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert len(fake_llm.calls(model)) == 3


async def test_budget_of_an_unknown_execution_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/dag-executions/dag-0-nope/budget", json={"max_tokens_per_run": 5})
    assert response.status_code == 404, response.text


async def test_approval_deadline_decides_and_the_node_says_so(api: httpx.AsyncClient) -> None:
    dag = await make_dag(
        api,
        {
            "nodes": [
                {
                    "id": "gated",
                    "tool": "noop",
                    "input": {"value": 1},
                    "requires_approval": True,
                    "approval_timeout_s": 1,
                    "on_timeout": "approve",
                }
            ]
        },
    )
    assert dag["spec"]["nodes"][0]["approval_timeout_s"] == 1
    body = await wait_closed(api, await start(api, dag["id"]))
    assert body["status"] == "succeeded", body
    gated = body["nodes"][0]
    assert gated["status"] == "succeeded" and gated["decided_by"] == "timeout"


async def test_bad_deadline_and_budget_fields_are_a_precise_422(api: httpx.AsyncClient) -> None:
    def gated(**fields: Any) -> dict[str, Any]:
        return {"id": "n", "tool": "noop", **fields}

    cases: dict[str, dict[str, Any]] = {
        "need 'requires_approval'": {"nodes": [gated(approval_timeout_s=5)]},
        "'on_timeout' needs 'approval_timeout_s'": {
            "nodes": [gated(requires_approval=True, on_timeout="fail")]
        },
        "approval_timeout_s": {"nodes": [gated(requires_approval=True, approval_timeout_s=0)]},
        "on_timeout": {"nodes": [gated(requires_approval=True, approval_timeout_s=5, on_timeout="maybe")]},
        "on_budget 'ask' needs 'max_tokens_per_run'": {"on_budget": "ask", "nodes": [gated()]},
        "on_budget": {"on_budget": "sometimes", "max_tokens_per_run": 5, "nodes": [gated()]},
    }
    for expected, spec in cases.items():
        response = await api.post("/api/v1/dags", json={"spec": {"name": "bad", **spec}})
        assert response.status_code == 422, (expected, response.text)
        assert expected in response.text, (expected, response.text)
