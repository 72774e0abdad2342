"""Stored DAGs: validation against the live catalog, CRUD, and their Temporal Schedules."""

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from contracts.dag import DagSpec, RunDagInput
from contracts.dag_validation import validate_spec
from contracts.mcp import is_mcp_tool
from contracts.schedules import ScheduleInfo
from contracts.search import RUN_KIND_DAG, search_attributes
from contracts.tool_inputs import tool_schemas
from contracts.workflow_names import DAG_WORKFLOW
from core.errors import Conflict, DomainError, Invalid, NotFound
from core.models import Agent, Dag, DagCreate, DagUpdate
from core.settings import Settings
from services import schedules
from services.temporal_errors import rpc_error
from storage.mcp_servers import find_tools

DEFAULT_TIMEZONE = "UTC"
SCHEDULE_PREFIX = "dag-"


class SpecInvalid(Invalid):
    """A DAG spec failed validation; `problems` lists every one (answered as one 422)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"the DAG spec has {len(problems)} problem(s): " + "; ".join(problems))
        self.problems = problems


def schedule_id(dag_id: int) -> str:
    """The Temporal Schedule id of a DAG (SPEC §5: readable, `dag-<id>`)."""
    return f"{SCHEDULE_PREFIX}{dag_id}"


def run_input(dag: Dag, *, params: dict[str, Any], reuse_outputs: Any = None) -> RunDagInput:
    """The DagWorkflow input for a stored DAG: its spec, and params over the spec's defaults."""
    assert dag.id is not None
    spec = dag.dag_spec()
    return RunDagInput(
        dag_id=dag.id,
        spec=spec,
        params={**spec.params, **params},
        reuse_outputs=reuse_outputs or {},
    )


def executions_query(dag_id: int | None = None, *, kind: str | None = "dag") -> str:
    """The visibility query for DAG executions (the same text works in `temporal workflow list`)."""
    clauses = []
    if dag_id is not None:
        clauses.append(f'DagId="{dag_id}"')
    if kind is not None:
        clauses.append(f'RunKind="{kind}"')
    return " AND ".join(clauses)


async def count_dag_workflows(client: Client, dag_id: int) -> int:
    """How many workflows (executions, experiments) Temporal holds for a DAG."""
    try:
        return (await client.count_workflows(executions_query(dag_id, kind=None))).count
    except RPCError as exc:
        raise rpc_error(exc, what=f"executions of DAG {dag_id}") from None


async def active_agent_names(session: AsyncSession) -> set[str]:
    """Names that have an active version: the agents a DAG may call."""
    rows = await session.exec(select(Agent.name).where(col(Agent.is_active)))
    return set(rows.all())


async def spec_problems(
    session: AsyncSession, spec: DagSpec, *, params: dict[str, Any] | None = None
) -> list[str]:
    """Every problem of a spec against the registered tools and active agents."""
    mcp_names = [n.tool for n in spec.nodes if n.tool is not None and is_mcp_tool(n.tool)]
    mcp_tools = (await find_tools(session, mcp_names))[0] if mcp_names else {}
    return validate_spec(
        spec,
        tool_schemas={**tool_schemas(), **{name: tool.input_schema for name, tool in mcp_tools.items()}},
        agent_names=await active_agent_names(session),
        params=params,
    )


async def check_spec(session: AsyncSession, spec: DagSpec, *, params: dict[str, Any] | None = None) -> None:
    """Raise SpecInvalid listing every problem, or return."""
    problems = await spec_problems(session, spec, params=params)
    if problems:
        raise SpecInvalid(problems)


async def get_dag(session: AsyncSession, dag_id: int) -> Dag:
    """The DAG, or NotFound."""
    dag = await session.get(Dag, dag_id)
    if dag is None:
        raise NotFound(f"DAG {dag_id} not found")
    return dag


async def list_dags(
    session: AsyncSession,
    *,
    name: str | None,
    scheduled: bool | None,
    limit: int,
    offset: int,
) -> list[Dag]:
    """DAGs in creation order; `name` matches a substring, case-insensitively."""
    query = select(Dag)
    if name:
        query = query.where(col(Dag.name).icontains(name))
    if scheduled is not None:
        schedule = col(Dag.schedule)
        query = query.where(schedule.is_not(None) if scheduled else schedule.is_(None))
    query = query.order_by(col(Dag.id)).limit(limit).offset(offset)
    return list((await session.exec(query)).all())


async def sync_schedule(client: Client, settings: Settings, dag: Dag) -> None:
    """Make the DAG's Temporal Schedule match its row: upserted with the current spec, or gone."""
    assert dag.id is not None
    if dag.schedule is None:
        await schedules.delete_schedule(client, schedule_id(dag.id))
        return
    await schedules.upsert_schedule(
        client,
        settings,
        schedule_id=schedule_id(dag.id),
        workflow=DAG_WORKFLOW,
        arg=run_input(dag, params={}),
        workflow_id_prefix=f"dag-{dag.id}-scheduled",
        cron=dag.schedule,
        timezone=dag.timezone or DEFAULT_TIMEZONE,
        search_attributes=search_attributes(dag_id=str(dag.id), run_kind=RUN_KIND_DAG),
        summary=f"Scheduled run of DAG {dag.id} ({dag.name})",
    )


async def create_dag(
    session: AsyncSession, client: Client | None, settings: Settings, data: DagCreate
) -> Dag:
    """Validate, store, and schedule (when a cron is given) a DAG."""
    await check_spec(session, data.spec)
    dag = Dag(
        name=data.name or data.spec.name,
        description=data.description if data.description is not None else data.spec.description,
        spec=data.spec.model_dump(mode="json"),
        schedule=data.schedule,
        timezone=data.timezone,
    )
    session.add(dag)
    await session.commit()
    await session.refresh(dag)
    if dag.schedule is not None:
        assert client is not None
        try:
            await sync_schedule(client, settings, dag)
        except DomainError:
            await session.delete(dag)
            await session.commit()
            raise
    return dag


async def update_dag(
    session: AsyncSession, client: Client, settings: Settings, dag_id: int, data: DagUpdate
) -> Dag:
    """Patch a DAG; a new spec is validated first; the schedule follows the row."""
    dag = await get_dag(session, dag_id)
    changes = data.model_dump(exclude_unset=True, exclude={"spec"})
    nulled = sorted(k for k in ("name", "description") if k in changes and changes[k] is None)
    if nulled:
        raise Invalid(f"{', '.join(nulled)} cannot be null")
    if data.spec is not None:
        await check_spec(session, data.spec)
        dag.spec = data.spec.model_dump(mode="json")
    dag.sqlmodel_update(changes)
    session.add(dag)
    await session.commit()
    await session.refresh(dag)
    if dag.schedule is not None or "schedule" in changes:
        await sync_schedule(client, settings, dag)
    return dag


async def delete_dag(session: AsyncSession, client: Client, dag_id: int) -> None:
    """Delete a DAG that never ran (its executions live in Temporal and name it)."""
    dag = await get_dag(session, dag_id)
    executions = await count_dag_workflows(client, dag_id)
    if executions:
        raise Conflict(f"DAG {dag_id} has {executions} execution(s) in Temporal; delete them first")
    await schedules.delete_schedule(client, schedule_id(dag_id))
    await session.delete(dag)
    await session.commit()


async def scheduled_dags(client: Client) -> list[ScheduleInfo]:
    """Every DAG schedule Temporal holds."""
    found = await schedules.describe_schedules(client, SCHEDULE_PREFIX)
    return [info for info in found if info.id[len(SCHEDULE_PREFIX) :].isdigit()]
