"""A `plan: once` goal's frozen plan, from GoalWorkflow: load it, freeze a new one, count a run.

Each is one store activity (storage/goal_plans.py has the design); whether a run uses them at
all is GoalWorkflow's `frozen-plan` patch. Deterministic: no I/O here.
"""

from temporalio import workflow
from temporalio.exceptions import ActivityError

from contracts.goals import FrozenPlan, GoalSnapshot, PlanOutcomeInput, StorePlanInput
from contracts.planning import PlanResult
from contracts.usage import TokenUsage
from workflows.store_options import STORE_RETRY, STORE_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from activities.goals import load_goal_plan, record_plan_outcome, store_goal_plan


async def load_frozen_plan(goal_id: int) -> FrozenPlan | None:
    """The version the goal's runs execute now; None: this run plans."""
    loaded = await workflow.execute_activity(
        load_goal_plan,
        goal_id,
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        summary=f"load goal {goal_id}'s frozen plan",
    )
    # Activity results decode into the host's classes; re-home them in the sandbox's.
    return FrozenPlan.model_validate(loaded, from_attributes=True) if loaded is not None else None


def frozen_plan_result(goal: GoalSnapshot, frozen: FrozenPlan) -> PlanResult:
    """The frozen plan as this run's plan: no planner call, no planning tokens."""
    return PlanResult(spec=frozen.spec, attempts=0, usage=TokenUsage(), planner=goal.agent)


def frozen_plan_detail(frozen: FrozenPlan) -> str:
    """The plan step's line for a run of a frozen plan."""
    nodes = len(frozen.spec.nodes)
    return f"frozen plan v{frozen.version} (DAG {frozen.dag_id}): {nodes} node(s), not re-planned"


async def freeze_plan(goal: GoalSnapshot, plan: PlanResult) -> tuple[FrozenPlan | None, str]:
    """Store the run's validated plan as the goal's next version (once per run; the first run
    to freeze one wins). Returns the version this run froze (None when it froze none) and what
    the plan step should add about it."""
    run_id = workflow.info().workflow_id
    stored = await workflow.execute_activity(
        store_goal_plan,
        StorePlanInput(
            goal_id=goal.id,
            workflow_id=run_id,
            spec=plan.spec,
            planner_name=plan.planner.name,
            planner_version=plan.planner.version,
        ),
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        summary=f"freeze goal {goal.id}'s plan",
    )
    if stored is None:
        return None, "not frozen: the goal no longer plans once"
    frozen = FrozenPlan.model_validate(stored, from_attributes=True)
    if frozen.source_workflow_id != run_id:
        return None, f"not frozen: run {frozen.source_workflow_id} froze plan v{frozen.version} first"
    return frozen, f"frozen as plan v{frozen.version} (DAG {frozen.dag_id})"


async def count_plan_outcome(frozen: FrozenPlan, *, succeeded: bool) -> None:
    """Count the run against its version (failures in a row may retire it). A store outage only
    loses the count, never the run's own result."""
    try:
        outcome = await workflow.execute_activity(
            record_plan_outcome,
            PlanOutcomeInput(
                goal_id=frozen.goal_id,
                version=frozen.version,
                workflow_id=workflow.info().workflow_id,
                succeeded=succeeded,
            ),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"count the run against plan v{frozen.version}",
        )
    except ActivityError as exc:
        workflow.logger.warning("plan v%s: the run's outcome was not counted: %s", frozen.version, exc)
        return
    if outcome.retired:
        workflow.logger.info(
            "plan v%s of goal %s is retired (%s failed runs in a row): the next run plans anew",
            frozen.version,
            frozen.goal_id,
            outcome.failures,
        )
