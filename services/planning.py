"""Goal → planner workflow → stored DAG (and optionally its first execution)."""

from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowFailureError

from contracts.planning import PLAN_INVALID, PlanFailure, PlannerInput, PlanResult
from contracts.search import RUN_KIND_PLANNER, search_attributes
from contracts.workflow_names import PLANNER_WORKFLOW
from core.errors import Invalid, NotFound
from core.models import Dag, DagCreate
from core.settings import Settings
from services import dags
from services.agents import resolve_agent
from services.ids import short_id
from services.temporal_errors import application_cause, domain_error
from services.waiting import StillRunning, require_worker, wait_bounded

PLANNER_TIMEOUT = timedelta(minutes=10)


class PlanRejected(Invalid):
    """The planner gave up; `failure` holds its last attempt and the problems (a 422)."""

    def __init__(self, failure: PlanFailure, *, workflow_id: str) -> None:
        super().__init__(
            f"the planner produced no valid DAG in {failure.attempts} attempt(s): "
            + "; ".join(failure.problems)
        )
        self.failure = failure
        self.workflow_id = workflow_id


async def run_planner(
    session: AsyncSession, client: Client, settings: Settings, params: PlannerInput
) -> tuple[str, PlanResult | StillRunning]:
    """Run PlannerWorkflow and wait a bounded time; returns (workflow id, plan or StillRunning).
    NoWorker (503) when no worker is there to run it."""
    try:
        await resolve_agent(session, params.agent)
    except NotFound:
        raise Invalid(f"planning agent {params.agent!r} has no active version") from None
    await require_worker(client, settings)
    workflow_id = f"planner-{params.agent}-{short_id()}"
    handle = await client.start_workflow(
        PLANNER_WORKFLOW,
        params,
        id=workflow_id,
        task_queue=settings.task_queue,
        execution_timeout=PLANNER_TIMEOUT,
        search_attributes=search_attributes(agent_name=params.agent, run_kind=RUN_KIND_PLANNER),
        static_summary=f"Plan a DAG with agent {params.agent}: {params.goal[:80]}",
        result_type=PlanResult,
    )

    async def plan() -> PlanResult:
        try:
            return await handle.result()
        except WorkflowFailureError as exc:
            cause = application_cause(exc)
            if cause is not None and cause.type == PLAN_INVALID and cause.details:
                failure = PlanFailure.model_validate(cause.details[0])
                raise PlanRejected(failure, workflow_id=workflow_id) from None
            raise domain_error(exc, workflow_id=workflow_id) from None

    return workflow_id, await wait_bounded(handle, plan(), settings=settings)


async def create_planned_dag(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    params: PlannerInput,
    *,
    name: str | None,
) -> tuple[Dag, str, PlanResult] | StillRunning:
    """Plan a DAG for a goal and store it; returns (dag, planner workflow id, plan), or
    StillRunning when the planner outlives the wait (its result holds the spec to store)."""
    workflow_id, plan = await run_planner(session, client, settings, params)
    if isinstance(plan, StillRunning):
        return plan
    data: dict[str, Any] = {"spec": plan.spec, "name": name}
    if not plan.spec.description:
        data["description"] = params.goal[:5000]
    dag = await dags.create_dag(session, None, settings, DagCreate.model_validate(data))
    return dag, workflow_id, plan
