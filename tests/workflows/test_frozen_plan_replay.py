"""GoalWorkflow runs of a `plan: once` goal replay deterministically: the first run (plans, freezes
the plan, counts its outcome) and a later run (loads the frozen plan, no planner), both after the
`frozen-plan` patch; the kept histories from before it (goal_full*.json) replay too.

Re-record with `GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_frozen_plan_replay.py`.
"""

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory

from tests.api.goal_helpers import make_goal, make_goal_agent, wait_closed
from tests.fakes.openai_server import FakeOpenAI
from tests.workflows.replay import HISTORIES, RECORD, load, record, replay_all, replayer
from workflows.goal import GoalWorkflow

RECORDED = {
    "first": HISTORIES / "goal_frozen_plan_first_run.json",
    "reused": HISTORIES / "goal_frozen_plan_reused.json",
}
"""A `plan: once` goal's first run (it plans and freezes) and its second (it runs the frozen DAG)."""
BEFORE = HISTORIES / "goal_full.json"
"""A run recorded before the patch."""


def _activities(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def test_frozen_plan_runs_replay_and_the_second_run_schedules_no_planner_request(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm)
    goal = await make_goal(api, agent["name"], plan="once")
    ids = []
    for _ in range(2):
        run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
        assert await wait_closed(client, run_id) == WorkflowExecutionStatus.COMPLETED
        ids.append(run_id)
    first, reused = [await client.get_workflow_handle(i).fetch_history() for i in ids]

    planned = _activities(first)
    assert planned.index("load_goal_plan") < planned.index("store_goal_plan")
    assert "record_plan_outcome" in planned
    later = _activities(reused)
    assert "load_goal_plan" in later and "record_plan_outcome" in later
    assert "load_planning_catalog" not in later and "store_goal_plan" not in later
    await replay_all(replayer(GoalWorkflow), [first, reused])
    if RECORD:
        record(RECORDED["first"], first)
        record(RECORDED["reused"], reused)


async def test_goal_runs_recorded_before_and_after_the_frozen_plan_patch_replay() -> None:
    histories = [load(path) for path in [BEFORE, *RECORDED.values()]]
    for history in histories:
        assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    await replay_all(replayer(GoalWorkflow), histories)
