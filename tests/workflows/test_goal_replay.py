"""GoalWorkflow replays deterministically: fresh runs (plan, child DAG, summary; a budget stop; a
plan that never validates) and the runs recorded before later, patched changes.

Re-record the kept histories (after a deliberate, patched change) with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_goal_replay.py`; keep the older files,
they are what in-flight runs of the previous code look like.
"""

import json
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory

from contracts.workflow_names import GOAL_WORKFLOW
from tests.api.goal_helpers import make_goal, make_goal_agent, wait_closed
from tests.fakes.openai_server import FakeOpenAI
from tests.workflows.replay import HISTORIES, RECORD, record, recorded, replay_all, replayer
from tests.workflows.test_recorded_histories import PATCH_TYPES
from tests.workflows.test_usage_marker_queries import _first_task_patches
from workflows.goal import GoalWorkflow

INVALID_PLAN = {"name": "broken", "nodes": [{"id": "a", "tool": "no_such_tool"}]}
RECORDED_BEFORE_SUMMARIZER = {
    "full": HISTORIES / "goal_full_before_summarizer.json",
    "degraded": HISTORIES / "goal_degraded_before_summarizer.json",
}
"""Runs whose summary the goal's own agent wrote: recorded before `goal-summary-by-summarizer`."""
STORE_ACTIVITIES = {"load_goal_snapshot", "load_planning_catalog", "save_goal_report", "record_run_usage"}
RECORDED_BEFORE_STORE_LOCAL = HISTORIES / "goal_full_before_store_local.json"
"""A full run whose store activities were regular activities: recorded before `goal-store-local`."""
RECORDED_FULL = HISTORIES / "goal_full.json"
"""A full run of today's code (the `summarizer` writes the report; store activities are local)."""


async def _run(api: httpx.AsyncClient, client: Client, goal_id: int) -> tuple[str, WorkflowExecutionStatus]:
    run_id = (await api.post(f"/api/v1/goals/{goal_id}/run")).json()["id"]
    return run_id, await wait_closed(client, run_id)


def _from_file(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(GoalWorkflow.__name__, json.loads(recorded(path)))


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
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in histories[0].events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert scheduled.isdisjoint(STORE_ACTIVITIES)  # store activities run as local activities
    # Asked before the first local activity, where live runs and replays agree (a `steps` query
    # answered while a local activity runs can move a later patch's marker a task on).
    goal_patches = {patch for patch, types in PATCH_TYPES.items() if GOAL_WORKFLOW in types}
    assert _first_task_patches(list(histories[0].events)) >= goal_patches
    await replay_all(replayer(GoalWorkflow), histories)
    if RECORD:  # older recordings are kept under their own names, never overwritten
        record(RECORDED_FULL, histories[0])


async def test_goal_runs_recorded_before_and_after_the_summarizer_change_still_replay() -> None:
    paths = [*RECORDED_BEFORE_SUMMARIZER.values(), RECORDED_BEFORE_STORE_LOCAL, RECORDED_FULL]
    histories = [_from_file(path) for path in paths]
    for history in histories:
        types = [e.event_type for e in history.events]
        assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    await replay_all(replayer(GoalWorkflow), histories)
