"""DAGs: explicit specs, planned ones, their schedules, and starting executions."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.accepted import WAITING_RESPONSES, accepted
from api.deps import IdPath, PageDep, SessionDep, SettingsDep, TemporalDep
from api.paging import CURSOR_HEADERS, CursorPageDep, link_next
from contracts.dag import ExecutionStatus
from contracts.dag_executions import ExecutionSummary, Started
from contracts.planning import DEFAULT_PLANNER, PlannerInput
from contracts.schedules import ScheduleInfo
from contracts.usage import TokenUsage
from core.models import DagCreate, DagPublic, DagUpdate
from core.stored_rows import public_row, public_rows
from services import dag_executions as executions
from services import dags as service
from services import planning
from services.dag_execution_list import page_executions
from services.waiting import StillRunning

router = APIRouter(prefix="/api/v1", tags=["dags"])


class ExecuteRequest(BaseModel):
    dag_id: int = Field(ge=1, le=2**31 - 1)
    params: dict[str, Any] = {}


class DagRunRequest(BaseModel):
    dag_id: int = Field(ge=1, le=2**31 - 1)


class PlanRequest(BaseModel):
    goal: str = Field(min_length=1, max_length=20_000)
    agent: str = Field(default=DEFAULT_PLANNER, min_length=1, max_length=63)
    name: str | None = Field(default=None, min_length=1, max_length=200)


class PlanAndExecuteRequest(PlanRequest):
    params: dict[str, Any] = {}


class PlanInfo(BaseModel):
    workflow_id: str
    agent: str
    agent_version: int
    attempts: int
    usage: TokenUsage


class PlannedDag(BaseModel):
    dag: DagPublic
    plan: PlanInfo


class PlannedExecution(PlannedDag):
    execution: Started


class ScheduledDag(ScheduleInfo):
    dag_id: int


def _spec_invalid(exc: service.SpecInvalid) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        {"message": "the DAG spec is invalid", "problems": exc.problems},
    )


def _plan_rejected(exc: planning.PlanRejected) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        {
            "message": str(exc),
            "problems": exc.failure.problems,
            "attempts": exc.failure.attempts,
            "last_attempt": exc.failure.last_attempt,
            "usage": exc.failure.usage.model_dump(),
            "workflow_id": exc.workflow_id,
        },
    )


@router.post("/dags", status_code=status.HTTP_201_CREATED)
async def create_dag(
    data: DagCreate, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> DagPublic:
    """Store a DAG from an explicit spec; every validation problem comes back in one 422."""
    try:
        dag = await service.create_dag(session, client, settings, data)
    except service.SpecInvalid as exc:
        raise _spec_invalid(exc) from None
    return DagPublic.model_validate(dag)


@router.get("/dags")
async def list_dags(
    session: SessionDep,
    page: PageDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
    scheduled: bool | None = None,
) -> list[DagPublic]:
    """Stored DAGs; `name` matches a substring, `scheduled` filters on having a cron."""
    rows = await service.list_dags(
        session, name=name, scheduled=scheduled, limit=page.limit, offset=page.offset
    )
    return public_rows(DagPublic, list(rows), what="DAG")


@router.get("/dags/scheduled")
async def list_scheduled(client: TemporalDep) -> list[ScheduledDag]:
    """DAG schedules as Temporal holds them (next runs, recent runs, paused)."""
    found = await service.scheduled_dags(client)
    return [
        ScheduledDag(**info.model_dump(), dag_id=int(info.id.removeprefix(service.SCHEDULE_PREFIX)))
        for info in found
    ]


@router.get("/dags/{dag_id}")
async def get_dag(dag_id: IdPath, session: SessionDep) -> DagPublic:
    """One DAG."""
    return public_row(DagPublic, await service.get_dag(session, dag_id), what=f"DAG {dag_id}")


@router.patch("/dags/{dag_id}")
async def update_dag(
    dag_id: IdPath,
    data: DagUpdate,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> DagPublic:
    """Edit a DAG; a new spec is validated; the schedule follows `schedule`/`timezone`."""
    try:
        dag = await service.update_dag(session, client, settings, dag_id, data)
    except service.SpecInvalid as exc:
        raise _spec_invalid(exc) from None
    return DagPublic.model_validate(dag)


@router.delete("/dags/{dag_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_dag(dag_id: IdPath, session: SessionDep, client: TemporalDep) -> None:
    """Delete a DAG with no executions in Temporal (409 otherwise) and its schedule."""
    await service.delete_dag(session, client, dag_id)


@router.get("/dags/{dag_id}/executions", responses=CURSOR_HEADERS)
async def list_dag_executions(
    dag_id: IdPath,
    request: Request,
    response: Response,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    page: CursorPageDep,
    status_filter: Annotated[ExecutionStatus | None, Query(alias="status")] = None,
) -> list[ExecutionSummary]:
    """This DAG's executions, newest first, from Temporal visibility; the next page is
    `?cursor=<X-Next-Cursor>`."""
    await service.get_dag(session, dag_id)
    found, next_cursor = await page_executions(
        client,
        settings,
        dag_id=dag_id,
        status=status_filter,
        limit=page.limit,
        cursor=page.cursor,
        offset=page.offset,
    )
    link_next(request, response, next_cursor)
    return found


async def _execute(
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    dag_id: int,
    params: dict[str, Any],
) -> Started:
    try:
        return await executions.start_execution(session, client, settings, dag_id=dag_id, params=params)
    except service.SpecInvalid as exc:
        raise _spec_invalid(exc) from None


@router.post("/execute-dag", status_code=status.HTTP_202_ACCEPTED)
async def execute_dag(
    body: ExecuteRequest, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> Started:
    """Start an execution with params over the spec's defaults; answers its id at once."""
    return await _execute(session, client, settings, body.dag_id, body.params)


@router.post("/dag-run", status_code=status.HTTP_202_ACCEPTED)
async def dag_run(
    body: DagRunRequest, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> Started:
    """Start an execution with the spec's default params."""
    return await _execute(session, client, settings, body.dag_id, {})


async def _plan(
    body: PlanRequest, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> PlannedDag | StillRunning:
    params = PlannerInput(goal=body.goal, agent=body.agent)
    try:
        planned = await planning.create_planned_dag(session, client, settings, params, name=body.name)
    except planning.PlanRejected as exc:
        raise _plan_rejected(exc) from None
    except service.SpecInvalid as exc:
        raise _spec_invalid(exc) from None
    if isinstance(planned, StillRunning):
        return planned
    dag, workflow_id, plan = planned
    info = PlanInfo(
        workflow_id=workflow_id,
        agent=plan.planner.name,
        agent_version=plan.planner.version,
        attempts=plan.attempts,
        usage=plan.usage,
    )
    return PlannedDag(dag=DagPublic.model_validate(dag), plan=info)


@router.post(
    "/create-dag", status_code=status.HTTP_201_CREATED, response_model=PlannedDag, responses=WAITING_RESPONSES
)
async def create_planned_dag(
    body: PlanRequest, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> PlannedDag | JSONResponse:
    """Turn a goal into a validated, stored DAG with the planner agent (422 if it never does;
    202 with the planner workflow, whose result holds the spec, if it outlives the wait)."""
    planned = await _plan(body, session, client, settings)
    if isinstance(planned, StillRunning):
        return accepted(planned, settings)
    return planned


@router.post(
    "/create-and-execute-dag",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PlannedExecution,
    responses=WAITING_RESPONSES,
)
async def create_and_execute_dag(
    body: PlanAndExecuteRequest, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> PlannedExecution | JSONResponse:
    """Plan and store a DAG for a goal, then start its first execution (202 with the planner
    workflow and no execution if planning outlives the wait)."""
    planned = await _plan(body, session, client, settings)
    if isinstance(planned, StillRunning):
        return accepted(planned, settings)
    started = await _execute(session, client, settings, planned.dag.id, body.params)
    return PlannedExecution(**planned.model_dump(), execution=started)
