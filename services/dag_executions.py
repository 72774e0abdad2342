"""DAG executions: start, list, inspect, steer and resume DagWorkflow runs.

Run state lives only in Temporal: lists come from visibility (`DagId`/`RunKind` search
attributes), details from the workflow's `status` query and `describe`. An execution id is the
workflow id, `dag-<dagId>-<shortid>`.
"""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common import v1 as common
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError

from contracts.dag import (
    ApprovalDecision,
    DagEvent,
    DagStatus,
    ExecutionStatus,
    NodeOutput,
    NodeState,
    NodeStatus,
    ResumeRequest,
)
from contracts.search import DAG_ID, search_attributes
from contracts.usage import TokenUsage
from core.models import Dag
from core.settings import Settings
from services import dags
from services.errors import Conflict, NotFound
from services.ids import short_id
from services.temporal_errors import query_error, rpc_error, update_error
from workflows.dag import DagWorkflow

EVENTS_TOPIC = "events"
EXECUTION_PREFIX = "dag-"

_CLOSED_STATUS: dict[WorkflowExecutionStatus, ExecutionStatus] = {
    WorkflowExecutionStatus.COMPLETED: ExecutionStatus.succeeded,
    WorkflowExecutionStatus.FAILED: ExecutionStatus.failed,
    WorkflowExecutionStatus.TIMED_OUT: ExecutionStatus.failed,
    WorkflowExecutionStatus.TERMINATED: ExecutionStatus.failed,
    WorkflowExecutionStatus.CANCELED: ExecutionStatus.cancelled,
}

_VISIBILITY_STATUS: dict[ExecutionStatus, str] = {
    ExecutionStatus.running: "ExecutionStatus='Running'",
    ExecutionStatus.suspended: "ExecutionStatus='Running'",
    ExecutionStatus.succeeded: "ExecutionStatus='Completed'",
    ExecutionStatus.failed: "ExecutionStatus IN ('Failed','TimedOut','Terminated')",
    ExecutionStatus.cancelled: "ExecutionStatus='Canceled'",
}


class ExecutionSummary(BaseModel):
    """One execution as visibility lists it (no per-node state: that needs the query)."""

    id: str
    run_id: str | None
    dag_id: int | None
    status: ExecutionStatus
    workflow_type: str
    started_at: datetime | None
    closed_at: datetime | None
    web_ui_url: str


class ExecutionDetail(BaseModel):
    """`GET /dag-executions/{id}`: the status query joined with what `describe` knows."""

    id: str
    run_id: str | None
    dag_id: int | None
    status: ExecutionStatus
    nodes: list[NodeState]
    done: int
    total: int
    usage: TokenUsage
    suspended_node: str | None = None
    error: str | None = None
    started_at: datetime | None
    closed_at: datetime | None
    web_ui_url: str


class Started(BaseModel):
    id: str
    run_id: str | None
    dag_id: int
    status: ExecutionStatus = ExecutionStatus.running
    reused_nodes: list[str] = []
    web_ui_url: str


def web_ui_url(settings: Settings, workflow_id: str) -> str:
    """Where the Temporal Web UI shows this execution."""
    return f"{settings.web_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


def _dag_id_of(attributes: Any) -> int | None:
    value = attributes.get(DAG_ID) if attributes is not None else None
    return int(value) if value is not None and str(value).isdigit() else None


def _status_of(status: WorkflowExecutionStatus | None) -> ExecutionStatus:
    if status is None or status == WorkflowExecutionStatus.RUNNING:
        return ExecutionStatus.running
    return _CLOSED_STATUS.get(status, ExecutionStatus.failed)


def _summary(settings: Settings, wf: WorkflowExecution) -> ExecutionSummary:
    return ExecutionSummary(
        id=wf.id,
        run_id=wf.run_id,
        dag_id=_dag_id_of(wf.typed_search_attributes),
        status=_status_of(wf.status),
        workflow_type=wf.workflow_type,
        started_at=wf.start_time,
        closed_at=wf.close_time,
        web_ui_url=web_ui_url(settings, wf.id),
    )


async def start_execution(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    *,
    dag_id: int,
    params: dict[str, Any],
    reuse_outputs: dict[str, NodeOutput] | None = None,
    note: str = "",
) -> Started:
    """Validate the stored spec against today's tools and agents, then start DagWorkflow."""
    dag = await dags.get_dag(session, dag_id)
    await dags.check_spec(session, dag.dag_spec(), params=params)
    return await _start(client, settings, dag, params=params, reuse_outputs=reuse_outputs, note=note)


async def _start(
    client: Client,
    settings: Settings,
    dag: Dag,
    *,
    params: dict[str, Any],
    reuse_outputs: dict[str, NodeOutput] | None,
    note: str,
) -> Started:
    workflow_id = f"{EXECUTION_PREFIX}{dag.id}-{short_id()}"
    summary = f"DAG {dag.id} ({dag.name})" + (f" — {note}" if note else "")
    try:
        handle = await client.start_workflow(
            DagWorkflow.run,
            dags.run_input(dag, params=params, reuse_outputs=reuse_outputs),
            id=workflow_id,
            task_queue=settings.task_queue,
            search_attributes=search_attributes(dag_id=str(dag.id), run_kind="dag"),
            static_summary=summary,
        )
    except RPCError as exc:
        raise rpc_error(exc, what=f"execution {workflow_id}") from None
    assert dag.id is not None
    return Started(
        id=workflow_id,
        run_id=handle.first_execution_run_id,
        dag_id=dag.id,
        reused_nodes=sorted(reuse_outputs or {}),
        web_ui_url=web_ui_url(settings, workflow_id),
    )


async def list_executions(
    client: Client,
    settings: Settings,
    *,
    dag_id: int | None,
    status: ExecutionStatus | None,
    limit: int,
    offset: int,
) -> list[ExecutionSummary]:
    """Executions newest first, from visibility; `suspended` also asks each running one."""
    query = dags.executions_query(dag_id)
    if status is not None:
        query += f" AND {_VISIBILITY_STATUS[status]}"
    found: list[ExecutionSummary] = []
    skipped = 0
    try:
        async for wf in client.list_workflows(query, page_size=min(1000, limit + offset)):
            summary = _summary(settings, wf)
            if status in (ExecutionStatus.running, ExecutionStatus.suspended):
                live = await _query_status(client.get_workflow_handle(wf.id, run_id=wf.run_id))
                if live is not None:
                    summary.status = live.execution_status
                if summary.status != status:
                    continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(summary)
            if len(found) >= limit:
                break
    except RPCError as exc:
        raise rpc_error(exc, what="DAG executions") from None
    return found


async def _query_status(handle: WorkflowHandle[Any, Any]) -> DagStatus | None:
    """The status query's answer, or None where the execution cannot answer it."""
    try:
        return await handle.query(DagWorkflow.status, rpc_timeout=timedelta(seconds=10))
    except (WorkflowQueryFailedError, RPCError):
        return None


def _handle(client: Client, execution_id: str) -> WorkflowHandle[Any, Any]:
    if not execution_id.startswith(EXECUTION_PREFIX):
        raise NotFound(f"DAG execution {execution_id} not found")
    return client.get_workflow_handle(execution_id)


async def describe(client: Client, execution_id: str) -> WorkflowExecutionDescription:
    """`describe` of a DAG execution (its latest run), or NotFound."""
    handle = _handle(client, execution_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        raise rpc_error(exc, what=f"DAG execution {execution_id}") from None
    if description.workflow_type != "DagWorkflow":
        raise NotFound(f"DAG execution {execution_id} not found")
    return description


async def get_execution(client: Client, settings: Settings, execution_id: str) -> ExecutionDetail:
    """Node states and usage from the status query; lifecycle and timestamps from describe."""
    description = await describe(client, execution_id)
    handle = client.get_workflow_handle(execution_id, run_id=description.run_id)
    live = await _query_status(handle)
    closed = description.status not in (None, WorkflowExecutionStatus.RUNNING)
    if closed:
        status = _status_of(description.status)
    elif live is not None and live.execution_status == ExecutionStatus.suspended:
        status = ExecutionStatus.suspended
    else:
        # The query can answer the final state a moment before the execution closes; until then
        # it is running, so status and `closed_at` never disagree.
        status = ExecutionStatus.running
    error = live.error if live else None
    if description.status == WorkflowExecutionStatus.TERMINATED:
        error = "terminated"
    elif description.status == WorkflowExecutionStatus.TIMED_OUT:
        error = "timed out"
    return ExecutionDetail(
        id=execution_id,
        run_id=description.run_id,
        dag_id=_dag_id_of(description.typed_search_attributes),
        status=status,
        nodes=live.nodes if live else [],
        done=live.done if live else 0,
        total=live.total if live else 0,
        usage=live.usage if live else TokenUsage(),
        suspended_node=live.suspended_node if live and not closed else None,
        error=error,
        started_at=description.start_time,
        closed_at=description.close_time,
        web_ui_url=web_ui_url(settings, execution_id),
    )


async def _is_closed(client: Client, execution_id: str) -> bool:
    description = await describe(client, execution_id)
    return description.status not in (None, WorkflowExecutionStatus.RUNNING)


async def _closed_conflict(client: Client, execution_id: str, doing: str) -> Conflict:
    """An RPC refused because the execution closed: a 409 (or 404 when it never existed)."""
    await describe(client, execution_id)  # raises NotFound for an unknown id
    return Conflict(f"cannot {doing}: DAG execution {execution_id} is closed")


async def decide(
    client: Client, execution_id: str, decision: ApprovalDecision, *, approve: bool
) -> DagStatus:
    """Approve or reject a node that waits for approval (a validated update)."""
    handle = _handle(client, execution_id)
    update = DagWorkflow.approve if approve else DagWorkflow.reject
    doing = "approve" if approve else "reject"
    try:
        await handle.execute_update(update, decision)
    except WorkflowUpdateFailedError as exc:
        raise update_error(exc, workflow_id=execution_id) from None
    except RPCError as exc:
        raise await _closed_conflict(client, execution_id, doing) from exc
    status = await _query_status(handle)
    if status is None:
        raise query_error(WorkflowQueryFailedError("no answer"), workflow_id=execution_id)
    return status


async def cancel(client: Client, execution_id: str) -> None:
    """Request cancellation; DagWorkflow cancels running nodes and closes as cancelled."""
    if await _is_closed(client, execution_id):
        raise Conflict(f"cannot cancel: DAG execution {execution_id} is closed")
    try:
        await _handle(client, execution_id).cancel()
    except RPCError as exc:
        raise await _closed_conflict(client, execution_id, "cancel") from exc


async def delete(client: Client, execution_id: str) -> None:
    """Delete a closed execution's history; a running one must be cancelled first (409)."""
    description = await describe(client, execution_id)
    if description.status in (None, WorkflowExecutionStatus.RUNNING):
        raise Conflict(f"DAG execution {execution_id} is running; cancel it first")
    request = DeleteWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=common.WorkflowExecution(workflow_id=execution_id),
    )
    try:
        await client.workflow_service.delete_workflow_execution(request)
    except RPCError as exc:
        raise rpc_error(exc, what=f"DAG execution {execution_id}") from None


async def resume(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    execution_id: str,
    request: ResumeRequest | None,
) -> tuple[bool, Started | DagStatus]:
    """Resume an execution: (False, status) after the resume update on a suspended one, or
    (True, new execution) that reuses every succeeded node of a closed, failed or cancelled one."""
    detail = await get_execution(client, settings, execution_id)
    if detail.status == ExecutionStatus.suspended:
        if request is None:
            raise Conflict(
                f"DAG execution {execution_id} is suspended at node {detail.suspended_node}; "
                "send {node_id, action, input} to resume it"
            )
        handle = _handle(client, execution_id)
        try:
            await handle.execute_update(DagWorkflow.resume, request)
        except WorkflowUpdateFailedError as exc:
            raise update_error(exc, workflow_id=execution_id) from None
        except RPCError as exc:
            raise await _closed_conflict(client, execution_id, "resume") from exc
        status = await _query_status(handle)
        if status is None:
            raise query_error(WorkflowQueryFailedError("no answer"), workflow_id=execution_id)
        return False, status
    if detail.status in (ExecutionStatus.running, ExecutionStatus.succeeded):
        raise Conflict(
            f"DAG execution {execution_id} is {detail.status}; only suspended, failed or "
            "cancelled executions can be resumed"
        )
    if detail.dag_id is None:
        raise Conflict(f"DAG execution {execution_id} names no DAG")
    if not detail.nodes:
        raise Conflict(f"DAG execution {execution_id} did not answer its node states")
    reuse = {node.id: node.node_output() for node in detail.nodes if node.status == NodeStatus.succeeded}
    started = await start_execution(
        session,
        client,
        settings,
        dag_id=detail.dag_id,
        params=await _params_of(client, execution_id),
        reuse_outputs=reuse,
        note=f"resumed from {execution_id}",
    )
    return True, started


async def _params_of(client: Client, execution_id: str) -> dict[str, Any]:
    """The params the old execution ran with (from its first event's input), so a resume
    reruns the rest with the same values."""
    handle = _handle(client, execution_id)
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            if payloads:
                [value] = await client.data_converter.decode(payloads[:1], [dict])
                params = value.get("params", {}) if isinstance(value, dict) else {}
                return params if isinstance(params, dict) else {}
            break
    return {}


async def events(
    client: Client, execution_id: str, *, after: int | None
) -> AsyncIterator[tuple[int, DagEvent]]:
    """(offset, event) from the execution's stream, after `after` (exclusive); ends when the
    execution closes. Follows continue-as-new, so the offsets keep counting across runs."""
    stream = WorkflowStreamClient.create(client, execution_id)
    start = 0 if after is None else after + 1
    async for item in stream.subscribe(EVENTS_TOPIC, from_offset=start, result_type=DagEvent):
        yield item.offset, item.data
