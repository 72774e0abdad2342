"""Goals: CRUD kept in step with their Temporal Schedules, and run / pause / resume."""

from fastapi import APIRouter, status
from pydantic import BaseModel

from api.deps import IdPath, PageDep, SessionDep, SettingsDep, TemporalDep
from core.models import GoalCreate, GoalPublic, GoalStatus, GoalUpdate
from core.models.goal import Goal
from services import goals as service

router = APIRouter(prefix="/api/v1/goals", tags=["goals"])


class RunStarted(BaseModel):
    id: str
    goal_id: int
    status: str = "running"
    web_ui_url: str


async def _public(session: SessionDep, goal: Goal) -> GoalPublic:
    [public] = await service.public_goals(session, [goal], one=True)
    return public


@router.get("")
async def list_goals(
    session: SessionDep, page: PageDep, status: GoalStatus | None = None
) -> list[GoalPublic]:
    """Goals, newest first, optionally with one status."""
    rows = await service.list_goals(session, status=status, limit=page.limit, offset=page.offset)
    return await service.public_goals(session, rows)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_goal(
    data: GoalCreate, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> GoalPublic:
    """Create a goal; one with a cron gets a Temporal Schedule `goal-<id>` in the same step."""
    return await _public(session, await service.create_goal(session, client, settings, data))


@router.get("/{goal_id}")
async def get_goal(goal_id: IdPath, session: SessionDep) -> GoalPublic:
    """One goal, with the frozen plan it runs (`plan_version`, `plan_dag_id`) when it has one."""
    return await _public(session, await service.get_goal(session, goal_id))


@router.patch("/{goal_id}")
async def update_goal(
    goal_id: IdPath,
    data: GoalUpdate,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> GoalPublic:
    """Edit a goal; its schedule follows cron, time zone and status changes."""
    return await _public(session, await service.update_goal(session, client, settings, goal_id, data))


@router.delete("/{goal_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_goal(goal_id: IdPath, session: SessionDep, client: TemporalDep) -> None:
    """Delete a goal and its schedule (its past runs stay in Temporal)."""
    await service.delete_goal(session, client, goal_id)


@router.post("/{goal_id}/run", status_code=status.HTTP_202_ACCEPTED)
async def run_goal(
    goal_id: IdPath, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> RunStarted:
    """Start one run now; follow it at `/runs/{id}`."""
    workflow_id = await service.start_run(session, client, settings, goal_id)
    return RunStarted(id=workflow_id, goal_id=goal_id, web_ui_url=settings.workflow_ui_url(workflow_id))


@router.post("/{goal_id}/pause")
async def pause_goal(
    goal_id: IdPath, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> GoalPublic:
    """Mark the goal paused and pause its schedule."""
    return await _public(
        session, await service.set_status(session, client, settings, goal_id, GoalStatus.paused)
    )


@router.post("/{goal_id}/resume")
async def resume_goal(
    goal_id: IdPath, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> GoalPublic:
    """Mark the goal active and unpause its schedule."""
    return await _public(
        session, await service.set_status(session, client, settings, goal_id, GoalStatus.active)
    )


@router.post("/{goal_id}/replan")
async def replan_goal(goal_id: IdPath, session: SessionDep) -> GoalPublic:
    """Drop the frozen plan (`plan: once`): the next run plans anew and freezes the next version."""
    return await _public(session, await service.replan(session, goal_id))
