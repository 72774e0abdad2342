"""AgentTestWorkflow replays deterministically: fresh histories and the recorded one.

Re-record the kept history (after a deliberate, versioned change) with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_agent_test_replay.py`.
"""

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from tests.fakes.openai_server import Fail, FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, record, recorded, replay_all, replayer
from workflows.agent_test import AgentTestWorkflow

RECORDED = HISTORIES / "agent_test.json"


def _replayer() -> Replayer:
    return replayer(AgentTestWorkflow)


def _event_types(history: WorkflowHistory) -> list[EventType.ValueType]:
    return [e.event_type for e in history.events]


def _workflow_ids(detail: str) -> list[str]:
    """Workflow ids named in an error detail (`... (workflow agent-test-1-abcd1234)`)."""
    return [word.rstrip(")") for word in detail.split() if word.startswith("agent-test-")]


async def _run(api: httpx.AsyncClient, fake: FakeOpenAI, *, fail_first: bool = False) -> str:
    provider = await make_provider(api, fake)
    agent = await make_agent(api, provider["id"])
    if fail_first:
        fake.script(agent["model"], Fail(503, "busy"))
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "replay me"})
    assert response.status_code == 200, response.text
    return str(response.json()["workflow_id"])


async def test_fresh_histories_replay_without_nondeterminism(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    plain = await client.get_workflow_handle(await _run(api, fake_llm)).fetch_history()
    retried = await client.get_workflow_handle(await _run(api, fake_llm, fail_first=True)).fetch_history()
    # The histories hold what replay must reproduce: an activity for the snapshot, one for the
    # model request (with a retried attempt in the second), one recording usage, then completion.
    for history in (plain, retried):
        types = _event_types(history)
        assert types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 3
        assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in retried.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) == 2
    await replay_all(_replayer(), [plain, retried])
    record(RECORDED, plain)


async def test_failed_run_history_replays(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    provider = await make_provider(api, fake_llm, api_key="sk-wrong-replay")
    agent = await make_agent(api, provider["id"])
    response = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "x"})
    assert response.status_code == 502
    [workflow_id] = _workflow_ids(response.json()["detail"])
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    assert _event_types(history)[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    await _replayer().replay_workflow(history)


async def test_recorded_history_replays_with_current_code() -> None:
    history = WorkflowHistory.from_json("agent-test-recorded", recorded(RECORDED))
    types = _event_types(history)
    assert types[0] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert history.events[0].workflow_execution_started_event_attributes.workflow_type.name == (
        "AgentTestWorkflow"
    )
    await _replayer().replay_workflow(history)
