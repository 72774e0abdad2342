"""GoalWorkflow replays deterministically: a full run (plan, child DAG, summary), a budget stop
and a failed plan."""

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from tests.api.goal_helpers import make_goal, make_goal_agent, wait_closed
from tests.fakes.openai_server import FakeOpenAI
from tests.workflows.replay import replayer
from workflows.goal import GoalWorkflow

INVALID_PLAN = {"name": "broken", "nodes": [{"id": "a", "tool": "no_such_tool"}]}


async def _run(api: httpx.AsyncClient, client: Client, goal_id: int) -> tuple[str, WorkflowExecutionStatus]:
    run_id = (await api.post(f"/api/v1/goals/{goal_id}/run")).json()["id"]
    return run_id, await wait_closed(client, run_id)


async def test_goal_histories_replay_without_nondeterminism(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    full, full_status = await _run(api, client, (await make_goal(api, agent["name"]))["id"])
    budget, budget_status = await _run(
        api, client, (await make_goal(api, agent["name"], max_tokens_per_run=5))["id"]
    )
    bad_agent = await make_goal_agent(api, fake_llm, plan=INVALID_PLAN)
    bad, bad_status = await _run(api, client, (await make_goal(api, bad_agent["name"]))["id"])
    assert (full_status, budget_status, bad_status) == (
        WorkflowExecutionStatus.COMPLETED,
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.COMPLETED,  # no valid plan: degraded to one agent step (patched)
    )

    histories = [await client.get_workflow_handle(i).fetch_history() for i in (full, budget, bad)]
    full_types = [e.event_type for e in histories[0].events]
    assert EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED in full_types
    replay = replayer(GoalWorkflow)
    for history in histories:
        await replay.replay_workflow(history)
