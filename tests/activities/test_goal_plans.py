"""The frozen-plan activities are safe to run twice: storing one run's plan again finds the version
it stored, a second run's plan does not replace the first, and a run's outcome counts once."""

from typing import Any

from sqlmodel import col, func, select
from temporalio.testing import ActivityEnvironment

from activities.goals import load_goal_plan, record_plan_outcome, store_goal_plan
from contracts.dag import DagSpec
from contracts.goals import FrozenPlan, PlanMode, PlanOutcome, PlanOutcomeInput, StorePlanInput
from core.db import session_scope
from core.models import Dag, Goal
from core.models.goal import GoalPlan
from core.settings import Settings
from tests.conftest import unique

SPEC: dict[str, Any] = {"name": "one", "nodes": [{"id": "a", "tool": "noop", "input": {"value": 1}}]}


async def _goal(settings: Settings, **extra: Any) -> int:
    async with session_scope(settings) as session:
        goal = Goal(title=unique("goal"), objective="o", plan=PlanMode.once, **extra)
        session.add(goal)
        await session.commit()
        assert goal.id is not None
        return goal.id


def _store(goal_id: int, workflow_id: str) -> StorePlanInput:
    return StorePlanInput(
        goal_id=goal_id,
        workflow_id=workflow_id,
        spec=DagSpec.model_validate(SPEC),
        planner_name="planner",
        planner_version=1,
    )


async def _versions(settings: Settings, goal_id: int) -> int:
    async with session_scope(settings) as session:
        return (await session.exec(select(func.count()).where(col(GoalPlan.goal_id) == goal_id))).one()


async def test_storing_the_same_runs_plan_twice_makes_one_version_and_a_later_run_gets_the_first(
    settings: Settings,
) -> None:
    env = ActivityEnvironment()
    goal_id = await _goal(settings)
    assert await env.run(load_goal_plan, goal_id) is None
    run = unique("goal-run")
    first = await env.run(store_goal_plan, _store(goal_id, run))
    again = await env.run(store_goal_plan, _store(goal_id, run))
    assert isinstance(first, FrozenPlan) and again == first
    assert (first.version, first.source_workflow_id) == (1, run)
    other = await env.run(store_goal_plan, _store(goal_id, unique("goal-run")))
    assert other == first  # the first validated plan stays the one in use
    assert await _versions(settings, goal_id) == 1
    assert await env.run(load_goal_plan, goal_id) == first
    async with session_scope(settings) as session:
        dag = await session.get(Dag, first.dag_id)
        assert dag is not None and dag.spec["nodes"][0]["id"] == "a"


async def test_a_runs_outcome_counts_once_and_n_failures_in_a_row_retire_the_version(
    settings: Settings,
) -> None:
    env = ActivityEnvironment()
    goal_id = await _goal(settings, replan_after_failures=2)
    plan = await env.run(store_goal_plan, _store(goal_id, unique("goal-run")))
    assert plan is not None

    def outcome(run: str, succeeded: bool) -> PlanOutcomeInput:
        return PlanOutcomeInput(goal_id=goal_id, version=plan.version, workflow_id=run, succeeded=succeeded)

    failed = unique("goal-run")
    one_failure = PlanOutcome(failures=1, retired=False)
    assert await env.run(record_plan_outcome, outcome(failed, False)) == one_failure
    # The same run counted again (a retried activity): still one failure.
    assert await env.run(record_plan_outcome, outcome(failed, False)) == one_failure
    second = outcome(unique("goal-run"), False)
    assert await env.run(record_plan_outcome, second) == PlanOutcome(failures=2, retired=True)
    assert await env.run(load_goal_plan, goal_id) is None
    replanned = await env.run(store_goal_plan, _store(goal_id, unique("goal-run")))
    assert replanned is not None and replanned.version == 2
