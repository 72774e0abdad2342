"""A DAG a goal planned (no `dags` row, no DagId) resumes like any other: a new execution from
the spec in its own input, reusing every completed node and rerunning only the failed one."""

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from tests.api.dag_helpers import wait_closed as wait_dag_closed
from tests.api.goal_helpers import make_goal, make_goal_agent, wait_closed
from tests.api.test_dag_executions_api import _tool_runs
from tests.fakes.openai_server import Fail, FakeOpenAI
from tests.helpers import make_agent, make_provider


async def test_a_goals_failed_dag_resumes_and_reruns_only_the_failed_node(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    reviewer = await make_agent(api, provider["id"])
    plan = {
        "name": "count-and-review",
        "nodes": [
            {"id": "count", "tool": "calculator", "input": {"expression": "6*7"}},
            {
                "id": "review",
                "agent": reviewer["name"],
                "prompt": "review {{nodes.count.output}}",
                "depends_on": ["count"],
            },
        ],
    }
    planner = await make_goal_agent(api, fake_llm, plan=plan)
    goal = await make_goal(api, planner["name"])
    fake_llm.script(reviewer["model"], Fail(400, "bad request once"))

    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    assert await wait_closed(client, run_id) == WorkflowExecutionStatus.FAILED
    run = (await api.get(f"/api/v1/runs/{run_id}")).json()
    old_id = run["dag_workflow_id"]
    assert old_id.startswith(f"dag-goal{goal['id']}-")
    old = await wait_dag_closed(api, old_id)
    assert old["status"] == "failed" and old["dag_id"] is None
    assert {n["id"]: n["status"] for n in old["nodes"]} == {"count": "succeeded", "review": "failed"}

    response = await api.post(f"/api/v1/resume-dag/{old_id}")
    assert response.status_code == 201, response.text
    started = response.json()
    new_id = started["id"]
    assert new_id != old_id and new_id.startswith(f"dag-goal{goal['id']}-")
    assert started["reused_nodes"] == ["count"] and started["dag_id"] is None

    new = await wait_dag_closed(api, new_id)
    assert new["status"] == "succeeded", new
    states = {n["id"]: n for n in new["nodes"]}
    assert states["count"]["reused"] is True and states["count"]["output"] == 42
    assert states["review"]["output"] == "echo: review 42"
    # Only the failed node ran again.
    assert len(fake_llm.calls(reviewer["model"])) == 2
    assert await _tool_runs(client, new_id, "calculator") == 0
    assert (await api.post(f"/api/v1/resume-dag/{new_id}")).status_code == 409
