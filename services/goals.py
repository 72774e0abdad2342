"""Goals: CRUD kept in step with each goal's Temporal Schedule, and starting runs.

The database row and the schedule change together: the row is flushed (so it has an id) but not
committed until Temporal accepted the schedule change, and a failed schedule change rolls the
row back. Only the reverse failure (Temporal accepted, the commit failed) needs undoing by hand.

A `plan: once` goal's frozen plan (storage/goal_plans.py) is retired here, in the same commit as
the change that calls for a new plan: a replan request, a new objective or planning agent, or
switching back to planning every run.
"""

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.common import TypedSearchAttributes

from contracts.goals import RUN_KIND_GOAL, GoalRunInput, PlanMode
from contracts.search import search_attributes
from contracts.workflow_names import GOAL_WORKFLOW
from core.db import count_by
from core.errors import Conflict, Invalid, NotFound
from core.models import Goal, GoalCreate, GoalPublic, GoalStatus, GoalUpdate
from core.settings import Settings
from core.stored_rows import public_row, public_rows
from services import runs
from services.agents import require_agent_name, resolve_agent
from services.ids import short_id
from services.schedules import delete_schedule, pause_schedule, unpause_schedule
from services.schedules import upsert_schedule as _upsert_schedule
from services.visibility import lists_changed
from storage import goal_plans


async def get_goal(session: AsyncSession, goal_id: int) -> Goal:
    """The goal, or NotFound."""
    goal = await session.get(Goal, goal_id)
    if goal is None:
        raise NotFound(f"goal {goal_id} not found")
    return goal


async def list_goals(
    session: AsyncSession, *, status: GoalStatus | None, limit: int, offset: int
) -> list[Goal]:
    """Goals, newest first, optionally with one status."""
    query = select(Goal)
    if status is not None:
        query = query.where(Goal.status == status)
    query = query.order_by(col(Goal.id).desc()).limit(limit).offset(offset)
    return list((await session.exec(query)).all())


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """How many goals have each status (every status listed, zeros included)."""
    return await count_by(session, Goal.status, (status.value for status in GoalStatus))


def goal_search_attributes(goal: Goal) -> TypedSearchAttributes:
    """GoalId + RunKind (+ AgentName): what `temporal workflow list --query` filters on."""
    return search_attributes(goal_id=str(goal.id), agent_name=goal.agent_name, run_kind=RUN_KIND_GOAL)


def run_summary(goal: Goal) -> str:
    """The static summary the Web UI shows for a goal run."""
    return f"Goal {goal.id}: {goal.title}"[:200]


SCHEDULE_FIELDS = frozenset({"schedule", "timezone", "title", "agent_name"})
"""Fields the schedule's spec or action is built from; `status` only pauses or unpauses it."""


async def _sync_schedule(client: Client, settings: Settings, goal: Goal, *, changed: set[str] | None) -> None:
    """Make the goal's schedule match the row: present with its cron, paused unless active.

    `changed` None means the schedule may not exist yet (create, or a cron was added).
    """
    schedule_id = f"goal-{goal.id}"
    status = GoalStatus(goal.status)
    note = f"goal is {status.value}"
    if not goal.schedule:
        await delete_schedule(client, schedule_id)
        return
    if changed is None or changed & SCHEDULE_FIELDS:
        await _upsert_schedule(
            client,
            settings,
            schedule_id=schedule_id,
            workflow=GOAL_WORKFLOW,
            arg=GoalRunInput(goal_id=goal.id or 0, trigger="schedule"),
            workflow_id_prefix=schedule_id,
            cron=goal.schedule,
            timezone=goal.timezone,
            search_attributes=goal_search_attributes(goal),
            summary=run_summary(goal),
            paused=status != GoalStatus.active,
            note=note,
        )
    elif "status" in changed:
        if status == GoalStatus.active:
            await unpause_schedule(client, schedule_id, note)
        else:
            await pause_schedule(client, schedule_id, note)


async def _commit_with_schedule(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    goal: Goal,
    *,
    changed: set[str] | None,
) -> None:
    """Flush, change the schedule, then commit; a refused schedule change rolls the row back."""
    session.add(goal)
    await session.flush()
    try:
        await _sync_schedule(client, settings, goal, changed=changed)
    except BaseException:
        await session.rollback()
        raise
    await session.commit()
    await session.refresh(goal)


async def _require_agent(session: AsyncSession, name: str) -> None:
    try:
        await require_agent_name(session, name)
    except NotFound as exc:
        raise Invalid(str(exc)) from None


async def create_goal(session: AsyncSession, client: Client, settings: Settings, data: GoalCreate) -> Goal:
    """Insert the goal and, when it has a cron, its schedule; neither exists without the other.
    A named agent must exist (the default planner may be configured later: its run says how)."""
    if "agent_name" in data.model_fields_set:
        await _require_agent(session, data.agent_name)
    goal = Goal.model_validate(data)
    await _commit_with_schedule(session, client, settings, goal, changed=None)
    return goal


async def update_goal(
    session: AsyncSession, client: Client, settings: Settings, goal_id: int, data: GoalUpdate
) -> Goal:
    """Patch the goal; cron, time zone, title or status changes update the schedule too."""
    goal = await get_goal(session, goal_id)
    had_schedule = goal.schedule is not None
    changes = data.model_dump(exclude_unset=True)
    removable = ("schedule", "max_tokens_per_run", "replan_after_failures")
    nulled = sorted(k for k, v in changes.items() if v is None and k not in removable)
    if nulled:
        raise Invalid(f"{', '.join(nulled)} cannot be null")
    if changes.get("agent_name") is not None:
        await _require_agent(session, changes["agent_name"])
    if reason := _replan_reason(goal, changes):
        await goal_plans.retire_plans(session, goal_id, reason)
    goal.sqlmodel_update(changes)
    if goal.schedule is None and not had_schedule:
        session.add(goal)
        await session.commit()
        await session.refresh(goal)
        return goal
    changed = set(changes) if had_schedule else None
    await _commit_with_schedule(session, client, settings, goal, changed=changed)
    return goal


def _replan_reason(goal: Goal, changes: dict[str, object]) -> str | None:
    """Why an edit retires the frozen plan: it was made for another objective, by another
    planner, or the goal goes back to planning every run. None: the plan stays."""
    for field in ("objective", "agent_name", "plan"):
        if field in changes and changes[field] != getattr(goal, field):
            return f"{field} changed"
    return None


async def public_goals(session: AsyncSession, goals: list[Goal], *, one: bool = False) -> list[GoalPublic]:
    """Goals as the API answers them, each with the frozen plan version it runs (one query). A row
    that cannot be answered is left out of a list, and is a 409 naming it when it is asked for
    alone (`one`): stored data never fails a read for everyone (core/stored_rows.py)."""
    plans = await goal_plans.plans_in_use(session, [g.id for g in goals if g.id is not None])
    updates: list[dict[str, object] | None] = []
    for goal in goals:
        plan = plans.get(goal.id or 0)
        extra: dict[str, object] = {"schedule_id": goal.schedule_id}
        if plan is not None:
            extra |= {
                "plan_version": plan.version,
                "plan_dag_id": plan.dag_id,
                "plan_failures": plan.failures,
            }
        updates.append(extra)
    if one:
        return [
            public_row(GoalPublic, goal, what=f"goal {goal.id}", update=updates[i])
            for i, goal in enumerate(goals)
        ]
    return public_rows(GoalPublic, goals, what="goal", updates=updates)


async def replan(session: AsyncSession, goal_id: int) -> Goal:
    """Retire the goal's frozen plan: its next run (scheduled or manual) plans and freezes the
    next version. Only for `plan: once` goals; asking again before that run changes nothing."""
    goal = await get_goal(session, goal_id)
    if goal.plan != PlanMode.once:
        raise Conflict(f'goal {goal_id} plans on every run; set "plan": "once" to keep a plan')
    await goal_plans.retire_plans(session, goal_id, goal_plans.REPLAN_REQUESTED)
    await session.commit()
    await session.refresh(goal)
    return goal


async def delete_goal(session: AsyncSession, client: Client, goal_id: int) -> None:
    """Delete the schedule, then the goal and its plan versions (their DAGs stay, like the runs
    in Temporal's history that name them). Refused (409) while a run of it is going: a DELETE
    never stops work; its runs are cancelled first (POST /runs/{id}/cancel). Ids are never given
    again (AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so no later goal inherits its runs."""
    goal = await get_goal(session, goal_id)
    running = await runs.running_runs_of_goal(client, goal_id)
    if running:
        raise Conflict(
            f"goal {goal_id} has {len(running)} running run(s) ({', '.join(running[:5])}); "
            "cancel them first (POST /api/v1/runs/{id}/cancel)"
        )
    await delete_schedule(client, f"goal-{goal_id}")
    await goal_plans.delete_plans(session, goal_id)
    await session.delete(goal)
    await session.commit()


async def set_status(
    session: AsyncSession, client: Client, settings: Settings, goal_id: int, status: GoalStatus
) -> Goal:
    """Pause or resume: the goal's status and its schedule's paused state change together."""
    goal = await get_goal(session, goal_id)
    if goal.status == GoalStatus.archived and status == GoalStatus.active:
        raise Conflict(f"goal {goal_id} is archived; un-archive it with PATCH first")
    goal.status = status
    if goal.schedule is None:
        session.add(goal)
        await session.commit()
        await session.refresh(goal)
        return goal
    await _commit_with_schedule(session, client, settings, goal, changed={"status"})
    return goal


NO_PROVIDER_HINT = (
    "set LLM_PROVIDER=local (the embedded model), or LLM_PROVIDER=openai with OPENAI_API_KEY and "
    "OPENAI_MODEL, LLM_PROVIDER=openrouter with OPENROUTER_API_KEY, or LLM_PROVIDER=ollama with "
    "OLLAMA_BASE_URL and OLLAMA_MODEL, and restart; or create a provider and an agent named {agent!r}"
)


async def _check_runnable(session: AsyncSession, settings: Settings, goal: Goal) -> None:
    """With LLM_PROVIDER=none and no agent set up by hand, fail at once naming what to configure.

    Otherwise a missing agent fails the run itself (typed `AgentNotFound`), as a scheduled run
    would, so the run and its reason show in Temporal.
    """
    if settings.llm_provider != "none":
        return
    try:
        await resolve_agent(session, goal.agent_name)
    except NotFound:
        raise Invalid(
            f"goal {goal.id} cannot run: no LLM provider is configured (LLM_PROVIDER=none) and agent "
            f"{goal.agent_name!r} has no active version; " + NO_PROVIDER_HINT.format(agent=goal.agent_name)
        ) from None


async def start_run(session: AsyncSession, client: Client, settings: Settings, goal_id: int) -> str:
    """Start one run of the goal now; returns its workflow id."""
    goal = await get_goal(session, goal_id)
    if goal.status == GoalStatus.archived:
        raise Conflict(f"goal {goal_id} is archived")
    await _check_runnable(session, settings, goal)
    workflow_id = f"goal-{goal_id}-{short_id()}"
    await client.start_workflow(
        GOAL_WORKFLOW,
        GoalRunInput(goal_id=goal_id),
        id=workflow_id,
        task_queue=settings.task_queue,
        search_attributes=goal_search_attributes(goal),
        static_summary=run_summary(goal),
    )
    lists_changed()
    return workflow_id
