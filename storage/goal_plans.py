"""Frozen plans: the versioned DAGs a `plan: once` goal runs without calling its planner.

Design. A goal with `plan: "once"` keeps its plans in `goal_plan` rows: (goal_id, version,
dag_id, source_workflow_id, planner, failures, retired_at/retired_reason, created_at). Each
version's DAG is an ordinary `dag` row (`GET /dags/{id}`, editable with `PATCH /dags/{id}`, its
executions listed under it), so a frozen plan is a DAG like any other, only linked to its goal.

- The plan in use is the goal's newest version that is not retired and whose DAG still exists.
  A goal run loads it (an activity); when there is one, the run executes that DAG and never
  calls the planner. When there is none, the run plans as before, and its first *validated* plan
  (not a degraded single-step run) is stored as the next version, keyed by the run's workflow
  id: storing the same run's plan twice finds the row it wrote, and a run that lost a race to
  another run's plan gets that plan back instead of a second version.
- Re-planning retires the version in use; the next run plans and stores version n+1. It happens
  on demand (`POST /goals/{id}/replan`), when the objective, the planning agent or the plan
  mode changes, and after `replan_after_failures` failed runs of the version in a row. Each run
  of a version leaves one `goal_plan_run` row (unique per workflow id), and the failures in a
  row are recounted from those rows, so a retried count changes nothing.
- Retired versions stay (with their reason) as the goal's plan history.

No commits in the helpers used by services (the caller commits with its other changes); the
activity helpers (`store_plan`, `count_outcome`) commit themselves.
"""

from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.goals import FrozenPlan, PlanMode, PlanOutcome, PlanOutcomeInput, StorePlanInput
from core.models import Dag, Goal
from core.models.common import utcnow
from core.models.goal import MAX_REPLAN_AFTER_FAILURES, GoalPlan, GoalPlanRun

REPLAN_REQUESTED = "replan requested"
MAX_DAG_NAME = 200


def _frozen(plan: GoalPlan, dag: Dag) -> FrozenPlan:
    return FrozenPlan(
        goal_id=plan.goal_id,
        version=plan.version,
        dag_id=dag.id or 0,
        spec=dag.dag_spec(),
        source_workflow_id=plan.source_workflow_id,
    )


async def plans_in_use(session: AsyncSession, goal_ids: Iterable[int]) -> dict[int, GoalPlan]:
    """Goal id → the version its runs execute, for the goals that have one (one query)."""
    ids = list(goal_ids)
    if not ids:
        return {}
    rows = await session.exec(
        select(GoalPlan)
        .join(Dag, col(Dag.id) == col(GoalPlan.dag_id))
        .where(col(GoalPlan.goal_id).in_(ids), col(GoalPlan.retired_at).is_(None))
        .order_by(col(GoalPlan.version).desc())
    )
    found: dict[int, GoalPlan] = {}
    for plan in rows.all():
        found.setdefault(plan.goal_id, plan)
    return found


async def plan_in_use(session: AsyncSession, goal_id: int) -> FrozenPlan | None:
    """The version the goal's next run executes, with its DAG's spec; None: the run plans."""
    row = (
        await session.exec(
            select(GoalPlan, Dag)
            .join(Dag, col(Dag.id) == col(GoalPlan.dag_id))
            .where(GoalPlan.goal_id == goal_id, col(GoalPlan.retired_at).is_(None))
            .order_by(col(GoalPlan.version).desc())
            .limit(1)
        )
    ).first()
    return _frozen(*row) if row is not None else None


async def retire_plans(session: AsyncSession, goal_id: int, reason: str) -> None:
    """Retire the goal's version in use (and any left without a DAG); the next run plans anew.
    Not committed: it goes with the caller's change."""
    await session.exec(
        update(GoalPlan)
        .where(col(GoalPlan.goal_id) == goal_id, col(GoalPlan.retired_at).is_(None))
        .values(retired_at=utcnow(), retired_reason=reason[:200])
    )


async def delete_plans(session: AsyncSession, goal_id: int) -> None:
    """Forget a deleted goal's versions (their DAGs stay: runs in Temporal name them). The
    foreign keys cascade on PostgreSQL; SQLite does not enforce them. Not committed."""
    plan_ids = select(GoalPlan.id).where(GoalPlan.goal_id == goal_id)
    await session.exec(delete(GoalPlanRun).where(col(GoalPlanRun.plan_id).in_(plan_ids)))
    await session.exec(delete(GoalPlan).where(col(GoalPlan.goal_id) == goal_id))


async def _stored_by(session: AsyncSession, workflow_id: str) -> FrozenPlan | None:
    row = (
        await session.exec(
            select(GoalPlan, Dag)
            .join(Dag, col(Dag.id) == col(GoalPlan.dag_id))
            .where(GoalPlan.source_workflow_id == workflow_id)
        )
    ).first()
    return _frozen(*row) if row is not None else None


async def store_plan(session: AsyncSession, params: StorePlanInput) -> FrozenPlan | None:
    """Freeze a run's validated plan as the goal's next version, once.

    Answers the version stored by this run when it already stored one (a retried activity), the
    version in use when another run froze one first, and None when the goal is gone or no
    longer plans once (nothing is stored then).
    """
    for attempt in range(2):
        if (mine := await _stored_by(session, params.workflow_id)) is not None:
            return mine
        # One writer per goal at a time on PostgreSQL (SQLite serialises writes anyway).
        goal = (await session.exec(select(Goal).where(Goal.id == params.goal_id).with_for_update())).first()
        if goal is None or goal.plan != PlanMode.once:
            await session.rollback()
            return None
        if (current := await plan_in_use(session, params.goal_id)) is not None:
            await session.rollback()
            return current
        latest = (
            await session.exec(select(func.max(GoalPlan.version)).where(GoalPlan.goal_id == params.goal_id))
        ).one()
        version = (latest or 0) + 1
        dag = Dag(
            name=(params.spec.name or f"goal-{goal.id}-plan")[:MAX_DAG_NAME],
            description=(
                f"Frozen plan v{version} of goal {goal.id} ({goal.title}), planned by "
                f"{params.planner_name} v{params.planner_version} in run {params.workflow_id}"
            )[:5000],
            spec=params.spec.model_dump(mode="json"),
        )
        session.add(dag)
        await session.flush()
        assert dag.id is not None
        plan = GoalPlan(
            goal_id=params.goal_id,
            version=version,
            dag_id=dag.id,
            source_workflow_id=params.workflow_id,
            planner_name=params.planner_name,
            planner_version=params.planner_version,
        )
        session.add(plan)
        try:
            await session.commit()
        except IntegrityError:  # the same run's retry, or another run, got there first
            await session.rollback()
            if attempt:
                raise
            continue
        return _frozen(plan, dag)
    raise AssertionError("unreachable")


async def _failures_in_a_row(session: AsyncSession, plan_id: int) -> int:
    """Failed runs since the version's last success (counted up to one past the largest
    threshold a goal may set)."""
    rows = await session.exec(
        select(GoalPlanRun.succeeded)
        .where(GoalPlanRun.plan_id == plan_id)
        .order_by(col(GoalPlanRun.id).desc())
        .limit(MAX_REPLAN_AFTER_FAILURES + 1)
    )
    count = 0
    for succeeded in rows.all():
        if succeeded:
            break
        count += 1
    return count


async def count_outcome(session: AsyncSession, params: PlanOutcomeInput) -> PlanOutcome:
    """Record how a run of a version ended; the goal's `replan_after_failures` failed runs of it
    in a row retire it. Safe to repeat: the run's row is written once and the count redone."""
    plan = (
        await session.exec(
            select(GoalPlan)
            .where(GoalPlan.goal_id == params.goal_id, GoalPlan.version == params.version)
            .with_for_update()
        )
    ).first()
    if plan is None or plan.id is None:  # the goal (and its plans) were deleted meanwhile
        await session.rollback()
        return PlanOutcome(failures=0, retired=True)
    counted = (
        await session.exec(select(GoalPlanRun).where(GoalPlanRun.workflow_id == params.workflow_id))
    ).first()
    if counted is None:
        session.add(GoalPlanRun(plan_id=plan.id, workflow_id=params.workflow_id, succeeded=params.succeeded))
        await session.flush()
    goal = await session.get(Goal, params.goal_id)
    threshold = goal.replan_after_failures if goal is not None else None
    plan.failures = await _failures_in_a_row(session, plan.id)
    if plan.retired_at is None and threshold is not None and plan.failures >= threshold:
        plan.retired_at = utcnow()
        plan.retired_reason = f"{plan.failures} failed runs in a row (replan_after_failures={threshold})"
    session.add(plan)
    await session.commit()
    return PlanOutcome(failures=plan.failures, retired=plan.retired_at is not None)
