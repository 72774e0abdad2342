"""PlannerWorkflow replays deterministically: a retried plan, a failed one, and the recorded one.

Re-record the kept history (after a deliberate, versioned change) with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_planner_replay.py`.
"""

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from tests.api.test_planner import INVALID, VALID, submit
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, record, recorded, replayer
from workflows.planner import PlannerWorkflow

RECORDED = HISTORIES / "planner.json"


def _replayer() -> Replayer:
    return replayer(PlannerWorkflow)


def _event_types(history: WorkflowHistory) -> list[EventType.ValueType]:
    return [e.event_type for e in history.events]


async def _planner(api: httpx.AsyncClient, fake: FakeOpenAI) -> dict[str, str]:
    provider = await make_provider(api, fake)
    return await make_agent(api, provider["id"], system_prompt="You plan DAGs.")


async def test_retried_plan_history_replays(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    planner = await _planner(api, fake_llm)
    fake_llm.script(planner["model"], submit(INVALID), submit(VALID))
    response = await api.post("/api/v1/create-dag", json={"goal": "add", "agent": planner["name"]})
    assert response.status_code == 201, response.text
    history = await client.get_workflow_handle(response.json()["plan"]["workflow_id"]).fetch_history()
    types = _event_types(history)
    # Pin the planner, load the catalog, one model request per attempt, then record usage.
    assert types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 5
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    await _replayer().replay_workflow(history)
    record(RECORDED, history)


async def test_failed_plan_history_replays(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    planner = await _planner(api, fake_llm)
    fake_llm.handlers[planner["model"]] = submit(INVALID)
    response = await api.post("/api/v1/create-dag", json={"goal": "never", "agent": planner["name"]})
    assert response.status_code == 422, response.text
    history = await client.get_workflow_handle(response.json()["detail"]["workflow_id"]).fetch_history()
    assert _event_types(history)[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    failure = history.events[-1].workflow_execution_failed_event_attributes.failure
    assert failure.application_failure_info.type == "PlanInvalid"
    assert failure.application_failure_info.non_retryable
    await _replayer().replay_workflow(history)


async def test_recorded_history_replays_with_current_code() -> None:
    history = WorkflowHistory.from_json("planner-recorded", recorded(RECORDED))
    assert history.events[0].workflow_execution_started_event_attributes.workflow_type.name == (
        "PlannerWorkflow"
    )
    assert _event_types(history)[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    await _replayer().replay_workflow(history)
