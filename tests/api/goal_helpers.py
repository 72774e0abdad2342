"""Builders and waits shared by the goal, schedule, run and stats tests."""

import asyncio
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI, tool_call
from tests.helpers import make_agent, make_provider
from workflows.planning import PLAN_TOOL

SIMPLE_PLAN: dict[str, Any] = {
    "name": "multiply",
    "nodes": [
        {"id": "calc", "tool": "calculator", "input": {"expression": "{{params.expr}}"}},
        {"id": "echo", "tool": "noop", "input": {"value": "{{nodes.calc.output}}"}, "depends_on": ["calc"]},
    ],
    "params": {"expr": "6 * 7"},
}


def submit(spec: dict[str, Any]) -> Any:
    """A fake-model step that answers with the planner's output tool call."""
    return lambda body: tool_call(PLAN_TOOL, spec)


SUMMARIZER_MODEL = "fake-summarizer"
"""The fake model the session's `summarizer` agent answers on: every goal run's report goes there."""


def summarize(body: dict[str, Any]) -> dict[str, Any]:
    """The fake summarizer: a report quoting the end of what it was asked."""
    return {"role": "assistant", "content": f"report: {str(body['messages'][-1]['content'])[-60:]}"}


async def use_fake_summarizer(api: httpx.AsyncClient, fake: FakeOpenAI) -> dict[str, Any]:
    """Make the active `summarizer` answer on the fake server (a new version), unless it does.

    The API's start registered `summarizer` on the embedded local model, which tests do not run.
    Its provider is named like a default one (`default-…`), so `ensure_defaults` (as the real
    local-model test calls it) still moves the default summarizer onto its own default provider.
    """
    fake.handlers[SUMMARIZER_MODEL] = summarize
    active = await api.get("/api/v1/agents/resolve/summarizer")
    if active.status_code == 200 and active.json()["model"] == SUMMARIZER_MODEL:
        return dict(active.json())
    provider = await make_provider(api, fake, name=unique("default-fake"))
    body = {
        "name": "summarizer",
        "provider_id": provider["id"],
        "model": SUMMARIZER_MODEL,
        "system_prompt": "You summarise the text you are given.",
        "activate": True,
    }
    created = await api.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def planner_then_echo(spec: dict[str, Any]) -> Any:
    """A handler: plan requests (they offer the plan tool) get `spec`, everything else an echo."""

    def handle(body: dict[str, Any]) -> dict[str, Any]:
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        if PLAN_TOOL in tools:
            return tool_call(PLAN_TOOL, spec)
        last = body["messages"][-1]["content"]
        return {"role": "assistant", "content": f"report: {str(last)[-60:]}"}

    return handle


async def make_goal_agent(
    api: httpx.AsyncClient, fake: FakeOpenAI, plan: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """An agent on its own fake model that plans `plan` and answers everything else; the
    session's `summarizer` on the fake too, since it writes every goal run's report."""
    await use_fake_summarizer(api, fake)
    provider = await make_provider(api, fake)
    agent = await make_agent(api, provider["id"], system_prompt="You plan and report.", **extra)
    fake.handlers[agent["model"]] = planner_then_echo(plan or SIMPLE_PLAN)
    return agent


async def make_goal(api: httpx.AsyncClient, agent_name: str, **extra: Any) -> dict[str, Any]:
    body = {
        "title": unique("goal"),
        "objective": "Multiply six by seven and report it.",
        "agent_name": agent_name,
        **extra,
    }
    response = await api.post("/api/v1/goals", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def wait_closed(client: Client, workflow_id: str, limit_s: float = 60) -> WorkflowExecutionStatus:
    """Poll describe until the workflow closed; its final status."""
    handle = client.get_workflow_handle(workflow_id)
    async with asyncio.timeout(limit_s):
        while True:
            status = (await handle.describe()).status
            if status not in (None, WorkflowExecutionStatus.RUNNING):
                return status
            await asyncio.sleep(0.2)


async def wait_visible(client: Client, query: str, count: int, limit_s: float = 30) -> list[Any]:
    """Poll visibility (eventually consistent) until `query` lists at least `count` workflows."""
    async with asyncio.timeout(limit_s):
        while True:
            found = [wf async for wf in client.list_workflows(query)]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.2)
