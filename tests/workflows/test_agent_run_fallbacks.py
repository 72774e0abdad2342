"""Fallback models on the real worker (issue 13.5): when an agent version's model fails for good,
the same run is made on its next fallback, each try its own activities; the node's status names
the model that answered; an output that fails its schema gets one repair request first.

Record the kept history again (after a deliberate, patched change) with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_agent_run_fallbacks.py`.
"""

import uuid
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType, RetryState
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory

from contracts import errors
from contracts.dag import DagSpec, ExecutionStatus, NodeSpec, RunDagInput
from core.settings import Settings
from tests.conftest import unique
from tests.fakes.openai_server import Fail, FakeOpenAI, tool_call
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, record, replayer, scheduled_activities
from tests.workflows.test_recorded_histories import _patches_of
from workflows.agent_runs import FALLBACKS_PATCH
from workflows.agent_test import AgentTestWorkflow
from workflows.dag import DagWorkflow

RECORDED = HISTORIES / "dag_agent_fallbacks.json"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


async def _start(client: Client, queue: str, spec: DagSpec) -> WorkflowHandle[DagWorkflow, Any]:
    return await client.start_workflow(
        DagWorkflow.run, RunDagInput(spec=spec), id=f"dag-fallback-{uuid.uuid4().hex[:8]}", task_queue=queue
    )


def _failures(history: WorkflowHistory) -> list[str]:
    """The application failure type of every failed activity attempt, in order."""
    return [
        e.activity_task_failed_event_attributes.failure.application_failure_info.type
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]


def _texts(call: dict[str, Any], role: str) -> list[str]:
    return [m["content"] for m in call["body"]["messages"] if m["role"] == role and m.get("content")]


def _fallback(provider_id: int, model: str) -> dict[str, Any]:
    return {"provider_id": provider_id, "model": model}


async def test_a_fallback_answers_after_the_primarys_401_and_the_node_status_names_it(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    """Also kept as the recorded history after the patch: a 401 fallback, and an output repaired
    once, still invalid, then answered by the fallback."""
    provider = await make_provider(api, fake_llm)
    backup = unique("fake-backup")
    agent = await make_agent(api, provider["id"], fallbacks=[_fallback(provider["id"], backup)])
    fake_llm.script(agent["model"], Fail(401, "Incorrect API key provided"))
    fake_llm.handlers[backup] = lambda body: {"role": "assistant", "content": "from the backup"}

    structured_backup = unique("fake-backup")
    structured = await make_agent(
        api, provider["id"], output_schema=SCHEMA, fallbacks=[_fallback(provider["id"], structured_backup)]
    )
    # Text where the schema's output tool must be called, twice: the answer, then its repair.
    fake_llm.script(
        structured["model"],
        lambda body: {"role": "assistant", "content": "seven"},
        lambda body: {"role": "assistant", "content": "still seven"},
    )
    fake_llm.handlers[structured_backup] = lambda body: tool_call(
        body["tools"][0]["function"]["name"], {"n": 7}
    )
    spec = DagSpec(
        name="fallbacks",
        nodes=[
            NodeSpec(id="write", agent=agent["name"], prompt="say hi"),
            NodeSpec(id="count", agent=structured["name"], prompt="count", depends_on=["write"]),
        ],
    )
    handle = await _start(client, settings.task_queue, spec)
    result = await handle.result()
    status = await handle.query(DagWorkflow.status)
    history = await handle.fetch_history()

    assert result.status == ExecutionStatus.succeeded
    assert result.outputs == {"count": {"n": 7}}
    nodes = {n.id: n for n in status.nodes}
    assert nodes["write"].output == "from the backup"
    assert nodes["write"].answered_by == f"{provider['id']}:{backup}"
    [failed] = nodes["write"].fallback_from
    assert failed.model == f"{provider['id']}:{agent['model']}"
    assert failed.error.startswith(f"{errors.PROVIDER_AUTH}: ") and "Incorrect API key" in failed.error
    # The primary was asked once (a 401 is final: no retry), the fallback once.
    assert (len(fake_llm.calls(agent["model"])), len(fake_llm.calls(backup))) == (1, 1)

    assert nodes["count"].answered_by == f"{provider['id']}:{structured_backup}"
    [invalid] = nodes["count"].fallback_from
    assert invalid.error.startswith(f"{errors.MODEL_OUTPUT_INVALID}: ")
    first, repair = fake_llm.calls(structured["model"])  # the answer and exactly one repair
    assert _texts(first, "assistant") == []
    assert _texts(repair, "assistant") == ["seven"]  # the repair continues the conversation
    assert len(fake_llm.calls(structured_backup)) == 1
    assert nodes["count"].usage.requests == 3  # every request counts, failed ones included

    scheduled = scheduled_activities(history)
    assert ("agent_request", "write-1-agent-1") in scheduled
    assert ("agent_request", "write-1-agent-1-fallback-1") in scheduled
    assert ("agent_request", "count-1-agent-1-fallback-1") in scheduled
    assert sum("model_request" in kind for kind, _ in scheduled) == 1  # the one repair request
    assert sorted(_failures(history)) == sorted([errors.PROVIDER_AUTH, "NeedsAgentLoop"])
    assert FALLBACKS_PATCH in await _patches_of(history)
    await replayer(DagWorkflow).replay_workflow(history)
    record(RECORDED, history)


async def test_a_retryable_failure_that_exhausts_its_retries_falls_back(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    backup = unique("fake-backup")
    agent = await make_agent(api, provider["id"], fallbacks=[_fallback(provider["id"], backup)])
    # LLM_RETRY allows 5 attempts: every one is answered 503, so Temporal's retries run out.
    fake_llm.script(agent["model"], *[Fail(503, "overloaded")] * 5)
    spec = DagSpec(
        name="fallback-after-retries", nodes=[NodeSpec(id="ask", agent=agent["name"], prompt="hi")]
    )
    handle = await _start(client, settings.task_queue, spec)
    result = await handle.result()
    history = await handle.fetch_history()

    assert result.status == ExecutionStatus.succeeded
    assert result.outputs == {"ask": "echo: hi"}
    [node] = result.nodes
    assert node.answered_by == f"{provider['id']}:{backup}"
    assert node.fallback_from[0].error.startswith(f"{errors.PROVIDER_UNAVAILABLE}: ")
    assert (len(fake_llm.calls(agent["model"])), len(fake_llm.calls(backup))) == (5, 1)
    # Temporal records an activity's last attempt only: the fifth, its retries spent.
    [failed] = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
    attrs = failed.activity_task_failed_event_attributes
    assert attrs.failure.application_failure_info.type == errors.PROVIDER_UNAVAILABLE
    assert attrs.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    await replayer(DagWorkflow).replay_workflow(history)


async def test_an_agent_loop_run_falls_back_too(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    """A version with tools runs the agent loop in the workflow: its model request activity fails
    for good (404: unknown model) and the run is made again on the fallback."""
    provider = await make_provider(api, fake_llm)
    backup = unique("fake-backup")
    agent = await make_agent(
        api, provider["id"], tools=["calculator"], fallbacks=[_fallback(provider["id"], backup)]
    )
    fake_llm.script(agent["model"], Fail(404, "The model does not exist"))
    spec = DagSpec(name="loop-fallback", nodes=[NodeSpec(id="ask", agent=agent["name"], prompt="hi")])
    handle = await _start(client, settings.task_queue, spec)
    result = await handle.result()
    history = await handle.fetch_history()

    assert result.status == ExecutionStatus.succeeded
    assert result.outputs == {"ask": "echo: hi"}
    [node] = result.nodes
    assert node.answered_by == f"{provider['id']}:{backup}"
    assert node.fallback_from[0].error.startswith(f"{errors.PROVIDER_REJECTED}: ")
    kinds = [kind for kind, _ in scheduled_activities(history)]
    assert "agent_request" not in kinds
    assert sum("model_request" in kind for kind in kinds) == 2  # the primary's, then the fallback's
    await replayer(DagWorkflow).replay_workflow(history)


async def test_an_output_repaired_by_one_request_answers_without_a_fallback(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    backup = unique("fake-backup")
    agent = await make_agent(
        api, provider["id"], output_schema=SCHEMA, fallbacks=[_fallback(provider["id"], backup)]
    )
    fake_llm.script(
        agent["model"],
        lambda body: {"role": "assistant", "content": "seven"},
        lambda body: tool_call(body["tools"][0]["function"]["name"], {"n": 7}),
    )
    spec = DagSpec(name="repaired", nodes=[NodeSpec(id="count", agent=agent["name"], prompt="count")])
    result = await (await _start(client, settings.task_queue, spec)).result()

    assert result.outputs == {"count": {"n": 7}}
    [node] = result.nodes
    assert (node.answered_by, node.fallback_from) == (f"{provider['id']}:{agent['model']}", [])
    _, repair = fake_llm.calls(agent["model"])
    assert _texts(repair, "assistant") == ["seven"]  # a repair of that answer, not a fresh start
    assert _texts(repair, "user")[0] == "count"
    assert fake_llm.calls(backup) == []
    assert node.usage.requests == 2


async def test_without_fallbacks_a_401_fails_the_node_as_before(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    fake_llm.script(agent["model"], Fail(401, "Incorrect API key provided"))
    spec = DagSpec(
        name="no-fallback", on_failure="fail", nodes=[NodeSpec(id="ask", agent=agent["name"], prompt="hi")]
    )
    handle = await _start(client, settings.task_queue, spec)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    [node] = (await handle.query(DagWorkflow.status)).nodes
    assert node.status == "failed"
    assert node.error is not None and node.error.startswith(f"{errors.PROVIDER_AUTH}: ")
    assert "fallback" not in node.error
    assert (node.answered_by, node.fallback_from) == (None, [])
    assert len(fake_llm.calls(agent["model"])) == 1
    history = await handle.fetch_history()
    # The patch marker is there (a DAG run decides every patch up front, workflows/dag_patches.py);
    # no fallback ran, as before: one request, no fallback_from.
    assert FALLBACKS_PATCH in await _patches_of(history)
    await replayer(DagWorkflow).replay_workflow(history)


async def test_when_every_model_fails_the_error_names_each(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    backup = unique("fake-backup")
    agent = await make_agent(api, provider["id"], fallbacks=[_fallback(provider["id"], backup)])
    fake_llm.script(agent["model"], Fail(401, "primary key revoked"))
    fake_llm.script(backup, Fail(403, "backup forbidden"))
    spec = DagSpec(
        name="all-fail", on_failure="fail", nodes=[NodeSpec(id="ask", agent=agent["name"], prompt="hi")]
    )
    handle = await _start(client, settings.task_queue, spec)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    [node] = (await handle.query(DagWorkflow.status)).nodes
    assert node.status == "failed"
    assert node.error is not None
    assert node.error.startswith(f"{errors.PROVIDER_AUTH}: ") and "backup forbidden" in node.error
    assert "primary key revoked" in node.error and f"{provider['id']}:{agent['model']}" in node.error
    assert (len(fake_llm.calls(agent["model"])), len(fake_llm.calls(backup))) == (1, 1)


async def test_an_agent_test_that_fell_back_replays(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    """Kept as AgentTestWorkflow's history after the patch."""
    provider = await make_provider(api, fake_llm)
    backup = unique("fake-backup")
    agent = await make_agent(api, provider["id"], fallbacks=[_fallback(provider["id"], backup)])
    fake_llm.script(agent["model"], Fail(403, "model not enabled for this key"))
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "replay me"})
    assert response.status_code == 200, response.text
    assert response.json()["answered_by"] == f"{provider['id']}:{backup}"
    history = await client.get_workflow_handle(response.json()["workflow_id"]).fetch_history()
    assert FALLBACKS_PATCH in await _patches_of(history)
    assert [kind for kind, _ in scheduled_activities(history)].count("agent_request") == 2
    await replayer(AgentTestWorkflow).replay_workflow(history)
    record(HISTORIES / "agent_test_fallbacks.json", history)
