"""Listing DAG executions from Temporal visibility: each execution once, with its real status.

Every filter is one visibility query. Closed executions map from Temporal's ExecutionStatus (so
runs from before the `DagStatus` search attribute list correctly); running ones are told apart
from suspended ones by `DagStatus`, which DagWorkflow upserts whenever its status changes.
"""

from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from contracts.dag import ExecutionStatus
from contracts.dag_executions import ExecutionSummary
from contracts.search import DAG_ID, DAG_STATUS
from core.settings import Settings
from services import dags
from services.execution_status import LATEST_RUNS, dag_closed_clause, dag_status
from services.visibility import list_page

_RUNNING = "ExecutionStatus = 'Running'"
_SUSPENDED = f"{DAG_STATUS.name} = 'suspended'"
_STATUS_CLAUSE: dict[ExecutionStatus, str] = {
    # Running executions from before the attribute existed have none: they count as running.
    ExecutionStatus.running: f"{_RUNNING} AND ({DAG_STATUS.name} IS NULL OR NOT {_SUSPENDED})",
    ExecutionStatus.suspended: f"{_RUNNING} AND {_SUSPENDED}",
    ExecutionStatus.succeeded: dag_closed_clause(ExecutionStatus.succeeded),
    ExecutionStatus.failed: dag_closed_clause(ExecutionStatus.failed),
    ExecutionStatus.cancelled: dag_closed_clause(ExecutionStatus.cancelled),
}


def dag_id_of(attributes: Any) -> int | None:
    """The `DagId` search attribute as a number (None for goal DAGs and experiments)."""
    value = attributes.get(DAG_ID) if attributes is not None else None
    return int(value) if value is not None and str(value).isdigit() else None


def listed_status(status: WorkflowExecutionStatus | None, attributes: Any) -> ExecutionStatus:
    """A closed execution's status from Temporal; a running one is suspended when it says so."""
    lifecycle = dag_status(status)
    suspended = attributes is not None and attributes.get(DAG_STATUS) == ExecutionStatus.suspended
    if lifecycle == ExecutionStatus.running and suspended:
        return ExecutionStatus.suspended
    return lifecycle


def executions_query(dag_id: int | None, status: ExecutionStatus | None) -> str:
    """The one visibility query behind `GET /dag-executions` (it works in `temporal workflow list`)."""
    query = f"{dags.executions_query(dag_id)} AND {LATEST_RUNS}"
    if status is not None:
        query += f" AND {_STATUS_CLAUSE[status]}"
    return query


def _summary(settings: Settings, wf: WorkflowExecution) -> ExecutionSummary:
    attributes = wf.typed_search_attributes
    return ExecutionSummary(
        id=wf.id,
        run_id=wf.run_id,
        dag_id=dag_id_of(attributes),
        status=listed_status(wf.status, attributes),
        workflow_type=wf.workflow_type,
        started_at=wf.start_time,
        closed_at=wf.close_time,
        web_ui_url=settings.workflow_ui_url(wf.id),
    )


async def page_executions(
    client: Client,
    settings: Settings,
    *,
    dag_id: int | None,
    status: ExecutionStatus | None,
    limit: int,
    cursor: str | None = None,
    offset: int = 0,
) -> tuple[list[ExecutionSummary], str | None]:
    """Executions newest first, each once (its latest run), from one visibility query, and the
    cursor of the next page."""
    query = executions_query(dag_id, status)
    rows, next_cursor = await list_page(
        client, query, limit=limit, cursor=cursor, offset=offset, what="DAG executions"
    )
    return [_summary(settings, wf) for wf in rows], next_cursor
