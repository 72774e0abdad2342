"""DagExperimentWorkflow (and its child DagWorkflows) replay deterministically.

Re-record the kept history (after a deliberate, versioned change) with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_experiment_replay.py`.
"""

import json

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from tests.api.dag_helpers import make_dag
from tests.conftest import unique
from tests.fakes.openai_server import Fail, FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, record, recorded, replay_all, replayer
from workflows.dag import DagWorkflow
from workflows.experiment import DagExperimentWorkflow

RECORDED = HISTORIES / "dag_experiment.json"


def _replayer() -> Replayer:
    return replayer(DagExperimentWorkflow, DagWorkflow)


async def test_experiment_and_cell_histories_replay(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    dag = await make_dag(
        api,
        {
            "nodes": [
                {"id": "n", "tool": "calculator", "input": {"expression": "2*3"}},
                {"id": "a", "agent": agent["name"], "prompt": "{{nodes.n.output}}", "depends_on": ["n"]},
            ]
        },
    )
    ok, broken = unique("fake-ok"), unique("fake-broken")
    fake_llm.script(broken, Fail(400, "no"))
    response = await api.post(
        "/api/v1/dag-experiments",
        json={
            "dag_id": dag["id"],
            "matrix": [
                {"provider_id": provider["id"], "model": ok},
                {"provider_id": provider["id"], "model": broken},
            ],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["status"] for c in body["cells"]] == ["succeeded", "failed"]
    parent = await client.get_workflow_handle(body["id"]).fetch_history()
    types = [e.event_type for e in parent.events]
    assert types.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) == 2
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    children = [await client.get_workflow_handle(c["execution_id"]).fetch_history() for c in body["cells"]]
    await replay_all(_replayer(), [parent, *children])
    record(RECORDED, parent)


async def test_recorded_history_replays_with_current_code() -> None:
    kept = json.loads(recorded(RECORDED))
    # Child ids derive from the parent's id, so replay must use the id it was recorded under.
    child_id = next(
        e["startChildWorkflowExecutionInitiatedEventAttributes"]["workflowId"]
        for e in kept["events"]
        if "startChildWorkflowExecutionInitiatedEventAttributes" in e
    )
    history = WorkflowHistory.from_json(child_id.rsplit("-", 1)[0], kept)
    assert history.events[0].workflow_execution_started_event_attributes.workflow_type.name == (
        "DagExperimentWorkflow"
    )
    await _replayer().replay_workflow(history)
