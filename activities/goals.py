"""Goal-run side effects: read the goal and pin its agent, load or freeze its plan (`plan: once`,
see storage/goal_plans.py), store the report, record usage and how a frozen plan's run ended."""

from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar
from temporalio import activity
from temporalio.client import WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.store import pinned, snapshot_of
from contracts import errors
from contracts.dag import DagStatus
from contracts.goals import (
    GOAL_NOT_FOUND,
    GOAL_NOT_RUNNABLE,
    SUMMARIZER_AGENT,
    FrozenPlan,
    GoalSnapshot,
    PlanMode,
    PlanOutcome,
    PlanOutcomeInput,
    RecordUsageInput,
    SaveReportInput,
    StorePlanInput,
)
from contracts.workflow_names import DAG_STATUS_QUERY
from core.db import session_scope
from core.models import Agent, Goal, GoalStatus, Provider, RunUsage
from core.models.common import utcnow
from core.settings import get_settings
from storage import goal_plans
from storage.artifacts import safe_name, save_artifact


def _active(name: str) -> SelectOfScalar[Agent]:
    return select(Agent).where(Agent.name == name, col(Agent.is_active))


@activity.defn
async def load_goal_snapshot(goal_id: int) -> GoalSnapshot:
    """The goal as it is now, with the active versions of its agent and of the `summarizer`
    pinned for this run, so an edit while it runs changes neither its plan nor its report."""
    async with session_scope(get_settings()) as session:
        goal = await session.get(Goal, goal_id)
        if goal is None:
            raise ApplicationError(f"goal {goal_id} does not exist", type=GOAL_NOT_FOUND, non_retryable=True)
        if goal.status == GoalStatus.archived:
            raise ApplicationError(f"goal {goal_id} is archived", type=GOAL_NOT_RUNNABLE, non_retryable=True)
        agent = (await session.exec(_active(goal.agent_name))).first()
        summarizer = (await session.exec(_active(SUMMARIZER_AGENT))).first()
        provider = await session.get(Provider, summarizer.provider_id) if summarizer is not None else None
        if agent is None:
            raise ApplicationError(
                f"no active version of agent {goal.agent_name!r}",
                type=errors.AGENT_NOT_FOUND,
                non_retryable=True,
            )
        agent_snapshot = await pinned(session, agent)
    return GoalSnapshot(
        id=goal_id,
        title=goal.title,
        objective=goal.objective,
        params=goal.params,
        max_tokens_per_run=goal.max_tokens_per_run,
        agent=agent_snapshot,
        summarizer=snapshot_of(summarizer) if summarizer is not None else None,
        summarizer_kind=str(provider.kind) if provider is not None else None,
        plan=PlanMode(goal.plan),
    )


@activity.defn
async def load_goal_plan(goal_id: int) -> FrozenPlan | None:
    """The frozen plan the run executes instead of planning; None: the run plans (read only)."""
    async with session_scope(get_settings()) as session:
        return await goal_plans.plan_in_use(session, goal_id)


@activity.defn
async def store_goal_plan(params: StorePlanInput) -> FrozenPlan | None:
    """Freeze the run's validated plan as the goal's next version, once per run (keyed by the
    run's workflow id); the version in use when another run froze one first."""
    async with session_scope(get_settings()) as session:
        return await goal_plans.store_plan(session, params)


@activity.defn
async def record_plan_outcome(params: PlanOutcomeInput) -> PlanOutcome:
    """Count how a run of a frozen plan ended; enough failures in a row retire the version."""
    async with session_scope(get_settings()) as session:
        return await goal_plans.count_outcome(session, params)


@activity.defn
async def save_goal_report(params: SaveReportInput) -> str:
    """Store the run's summary report as a Markdown artifact; returns its name."""
    settings = get_settings()
    name = safe_name(params.workflow_id, suffix="-report.md")
    body = f"# {params.title}\n\n{params.content}\n"
    async with session_scope(settings) as session:
        artifact = await save_artifact(
            session,
            settings,
            name=name,
            content=body,
            content_type="text/markdown; charset=utf-8",
            workflow_id=params.workflow_id,
            node_id="summary",
        )
    return artifact.name


@activity.defn
async def record_run_usage(params: RecordUsageInput) -> None:
    """Write the finished run's usage once; a retried activity updates the same row."""
    usage = params.usage
    values: dict[str, Any] = {
        "run_kind": params.run_kind,
        "goal_id": params.goal_id,
        "agent_name": params.agent_name,
        "status": params.status,
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "finished_at": utcnow(),
    }
    async with session_scope(get_settings()) as session:
        for attempt in range(2):
            row = (
                await session.exec(select(RunUsage).where(RunUsage.workflow_id == params.workflow_id))
            ).first()
            if row is None:
                row = RunUsage(workflow_id=params.workflow_id, **values)
            else:
                row.sqlmodel_update(values)
            session.add(row)
            try:
                await session.commit()
                return
            except IntegrityError:
                await session.rollback()
                if attempt:
                    raise


@activity.defn
async def fetch_dag_status(dag_workflow_id: str) -> DagStatus | None:
    """A closed DAG's final `status` (node states, usage): a failed child reports only its error
    to the parent, and a workflow cannot query another workflow itself."""
    handle = activity.client().get_workflow_handle(dag_workflow_id)
    try:
        return await handle.query(DAG_STATUS_QUERY, result_type=DagStatus, rpc_timeout=timedelta(seconds=20))
    except (WorkflowQueryFailedError, RPCError):
        return None
