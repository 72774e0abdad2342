"""DAG executions: start, inspect and steer DagWorkflow runs.

Run state lives in Temporal: details come from the workflow's `status` query and `describe`; a
run that closed saved its final state (storage/final_states.py), which is read instead of the
query. An execution id is the workflow id, `dag-<dagId>-<shortid>` (or `dag-goal<goalId>-...`
for a goal's DAG). Listing is `services/dag_execution_list.py`, resuming a closed execution
`services/dag_resume.py`, the event stream `services/dag_event_stream.py`.
"""

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common import v1 as common
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError

from contracts.dag import (
    ApprovalDecision,
    BudgetRaise,
    DagStatus,
    ExecutionStatus,
    InputAnswer,
    NodeOutput,
    RunDagInput,
)
from contracts.dag_executions import ExecutionDetail, Started
from contracts.search import RUN_KIND_DAG, search_attributes
from contracts.usage import TokenUsage
from contracts.workflow_names import (
    DAG_ANSWER_UPDATE,
    DAG_APPROVE_UPDATE,
    DAG_RAISE_BUDGET_SIGNAL,
    DAG_RAISE_BUDGET_UPDATE,
    DAG_REJECT_UPDATE,
    DAG_STATUS_QUERY,
    DAG_WORKFLOW,
)
from core import payload_blobs
from core.db import session_scope
from core.errors import Conflict, DomainError, NotFound, Upstream
from core.settings import Settings
from services import dag_event_stream, dags
from services.dag_execution_list import dag_id_of
from services.execution_status import dag_status, provider_waits
from services.held_runs import held_reason
from services.ids import short_id
from services.read_cache import ReadCache
from services.temporal_errors import query_error, rpc_error, update_error
from services.visibility import lists_changed
from storage import final_states

EXECUTION_PREFIX = "dag-"
FORKED_FROM = "forked_from"
FORKED_FROM_NODE = "forked_from_node"
"""Memo keys of a forked execution: its origin's id and the node it reran from."""


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
    assert dag.id is not None
    summary = f"DAG {dag.id} ({dag.name})" + (f" — {note}" if note else "")
    return await start_run(
        client,
        settings,
        dags.run_input(dag, params=params, reuse_outputs=reuse_outputs),
        workflow_id=f"{EXECUTION_PREFIX}{dag.id}-{short_id()}",
        attributes=search_attributes(dag_id=str(dag.id), run_kind=RUN_KIND_DAG),
        summary=summary,
    )


async def start_run(
    client: Client,
    settings: Settings,
    run_input: RunDagInput,
    *,
    workflow_id: str,
    attributes: TypedSearchAttributes,
    summary: str,
    memo: dict[str, str] | None = None,
) -> Started:
    """Start DagWorkflow with a ready input (a stored DAG's, or an earlier execution's)."""
    try:
        handle = await client.start_workflow(
            DAG_WORKFLOW,
            run_input,
            id=workflow_id,
            task_queue=settings.task_queue,
            search_attributes=attributes,
            static_summary=summary[:200],
            memo=memo,
        )
    except RPCError as exc:
        raise rpc_error(exc, what=f"execution {workflow_id}") from None
    lists_changed()
    return Started(
        id=workflow_id,
        run_id=handle.first_execution_run_id,
        dag_id=dag_id_of(attributes),
        reused_nodes=sorted(run_input.reuse_outputs),
        web_ui_url=settings.workflow_ui_url(workflow_id),
    )


async def query_status(handle: WorkflowHandle[Any, Any]) -> DagStatus | None:
    """The status query's answer, or None where the execution cannot answer it."""
    try:
        return await handle.query(DAG_STATUS_QUERY, result_type=DagStatus, rpc_timeout=timedelta(seconds=10))
    except (WorkflowQueryFailedError, RPCError):
        return None


def handle_of(client: Client, execution_id: str) -> WorkflowHandle[Any, Any]:
    if not execution_id.startswith(EXECUTION_PREFIX):
        raise NotFound(f"DAG execution {execution_id} not found")
    return client.get_workflow_handle(execution_id)


async def describe(client: Client, execution_id: str) -> WorkflowExecutionDescription:
    """`describe` of a DAG execution (its latest run), or NotFound."""
    handle = handle_of(client, execution_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        raise rpc_error(exc, what=f"DAG execution {execution_id}") from None
    if description.workflow_type != DAG_WORKFLOW:
        raise NotFound(f"DAG execution {execution_id} not found")
    return description


CLOSED_DETAILS: ReadCache[ExecutionDetail] = ReadCache(max_entries=2048)
"""A closed run's detail never changes: asking again would only make a worker replay its history."""
STATUS_ANSWERS: ReadCache[tuple[int, DagStatus]] = ReadCache(max_entries=4096)
"""The last `status` answer of each running run, with the history length it was asked at."""
CACHED_NODES_MAX = 1000
"""Larger executions are not kept (their detail can be megabytes)."""


async def get_execution(client: Client, settings: Settings, execution_id: str) -> ExecutionDetail:
    """Node states and usage from the run's state; lifecycle and timestamps from describe.

    Describe is asked every time (a deleted or reset execution shows at once). The state comes
    from the cheapest place that holds it: a closed run's detail once read, else the final state
    the run saved as it closed (one database read, where the query would make a worker replay
    the whole history), else the `status` query, whose answer is reused while the run's history
    has not grown (a workflow's state changes only with its history)."""
    description = await describe(client, execution_id)
    closed = _closed(description)
    key = (client.namespace, execution_id, description.run_id, settings.web_ui_url)
    cached = CLOSED_DETAILS.peek(key) if closed else None
    if cached is not None:
        return cached
    state = await _saved_final_state(settings, execution_id, description.run_id) if closed else None
    held = None if closed else await held_reason(client, description)
    if held is not None:  # no worker can answer the query: the last answer kept, if any
        known = STATUS_ANSWERS.peek((client.namespace, execution_id, description.run_id))
        state = known[1] if known is not None else None
    elif state is None:
        state = await _queried_state(client, execution_id, description)
    detail = await _detail(client, settings, execution_id, description, state, held=held)
    if closed and detail.total and len(detail.nodes) <= CACHED_NODES_MAX:
        CLOSED_DETAILS.put(key, detail)
    return detail


async def _saved_final_state(settings: Settings, execution_id: str, run_id: str | None) -> DagStatus | None:
    if run_id is None:
        return None
    async with session_scope(settings) as session:
        return await final_states.load(session, execution_id, run_id)


async def _queried_state(
    client: Client, execution_id: str, description: WorkflowExecutionDescription
) -> DagStatus | None:
    """The `status` answer, asked only when the history grew since the one kept for this run."""
    key = (client.namespace, execution_id, description.run_id)
    length = description.history_length
    known = STATUS_ANSWERS.peek(key)
    if known is not None and known[0] == length:
        return known[1]
    handle = client.get_workflow_handle(execution_id, run_id=description.run_id)
    state = await query_status(handle)
    if state is not None and len(state.nodes) <= CACHED_NODES_MAX:
        STATUS_ANSWERS.put(key, (length, state))
    return state


async def _detail(
    client: Client,
    settings: Settings,
    execution_id: str,
    description: WorkflowExecutionDescription,
    live: DagStatus | None,
    *,
    held: str | None = None,
) -> ExecutionDetail:
    closed = _closed(description)
    nodes = live.nodes if live else []
    if live is not None and not closed:  # a model request queued for provider capacity
        nodes = await provider_waits(nodes, description, client.data_converter)
    if closed:
        status = dag_status(description.status)
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
    memo = await description.memo()
    return ExecutionDetail(
        id=execution_id,
        run_id=description.run_id,
        dag_id=dag_id_of(description.typed_search_attributes),
        status=status,
        nodes=nodes,
        done=live.done if live else 0,
        total=live.total if live else 0,
        usage=live.usage if live else TokenUsage(),
        suspended_node=live.suspended_node if live and not closed else None,
        error=error,
        max_tokens_per_run=live.max_tokens_per_run if live else None,
        waiting_reason=held or (live.waiting_reason if live and not closed else None),
        started_at=description.start_time,
        closed_at=description.close_time,
        web_ui_url=settings.workflow_ui_url(execution_id),
        forked_from=memo.get(FORKED_FROM),
        forked_from_node=memo.get(FORKED_FROM_NODE),
    )


def _closed(description: WorkflowExecutionDescription) -> bool:
    return description.status not in (None, WorkflowExecutionStatus.RUNNING)


async def _is_closed(client: Client, execution_id: str) -> bool:
    return _closed(await describe(client, execution_id))


async def closed_conflict(client: Client, execution_id: str, doing: str) -> DomainError:
    """An RPC the execution refused: a 409 when it closed (404 when it never existed), a 503 while
    it is held (no worker of this release can replay it: a rollback or fix lets it take the call)."""
    description = await describe(client, execution_id)  # raises NotFound for an unknown id
    if not _closed(description):
        held = await held_reason(client, description)
        if held is not None:
            return Upstream(
                f"cannot {doing}: DAG execution {execution_id} is {held}", status_code=503, kind="RunHeld"
            )
    return Conflict(f"cannot {doing}: DAG execution {execution_id} is closed")


async def decide(
    client: Client, execution_id: str, decision: ApprovalDecision, *, approve: bool
) -> DagStatus:
    """Approve or reject a node that waits for approval (a validated update)."""
    update = DAG_APPROVE_UPDATE if approve else DAG_REJECT_UPDATE
    doing = "approve" if approve else "reject"
    return await update_then_status(client, execution_id, update, decision, doing=doing)


async def answer(client: Client, execution_id: str, answer: InputAnswer) -> DagStatus:
    """Answer a node's MCP tool's question (a validated update: the node must be asking one)."""
    return await update_then_status(client, execution_id, DAG_ANSWER_UPDATE, answer, doing="answer")


async def raise_budget(client: Client, execution_id: str, request: BudgetRaise) -> DagStatus:
    """Set a larger token budget (a validated update: it must be above what the execution used);
    an execution paused at its budget (`on_budget: ask`) goes on."""
    return await update_then_status(
        client, execution_id, DAG_RAISE_BUDGET_UPDATE, request, doing="raise the token budget"
    )


async def signal_raise_budget(client: Client, execution_id: str, request: BudgetRaise) -> DagStatus:
    """The same raise as a signal (what `temporal workflow signal` sends, for the CLI). A signal
    cannot answer, so the status is checked first; the workflow ignores an invalid one anyway.
    Answers the status the raise was checked against."""
    description = await describe(client, execution_id)
    if _closed(description):
        raise Conflict(f"cannot raise the token budget: DAG execution {execution_id} is closed")
    handle = client.get_workflow_handle(execution_id, run_id=description.run_id)
    status = await query_status(handle)
    if status is None:
        raise query_error(WorkflowQueryFailedError("no answer"), workflow_id=execution_id)
    if status.max_tokens_per_run is None:
        raise Conflict(f"DAG execution {execution_id} has no token budget to raise")
    used = status.usage.total_tokens
    if request.max_tokens_per_run <= used:
        raise Conflict(
            f"max_tokens_per_run must be above the {used} tokens this execution has used "
            f"(asked for {request.max_tokens_per_run})"
        )
    try:
        await client.get_workflow_handle(execution_id).signal(DAG_RAISE_BUDGET_SIGNAL, request)
    except RPCError as exc:
        raise await closed_conflict(client, execution_id, "raise the token budget") from exc
    lists_changed()
    return status


async def update_then_status(
    client: Client, execution_id: str, update: str, argument: BaseModel, *, doing: str
) -> DagStatus:
    """Send a validated update (approve, reject, resume, raise the budget), then the status it left.
    A refused update is a 4xx naming why; one to a closed execution a 409."""
    handle = handle_of(client, execution_id)
    try:
        await handle.execute_update(update, argument)
    except WorkflowUpdateFailedError as exc:
        raise update_error(exc, workflow_id=execution_id) from None
    except RPCError as exc:
        raise await closed_conflict(client, execution_id, doing) from exc
    lists_changed()  # the update may have changed the status lists filter by
    status = await query_status(handle)
    if status is None:
        raise query_error(WorkflowQueryFailedError("no answer"), workflow_id=execution_id)
    return status


async def cancel(client: Client, execution_id: str) -> None:
    """Request cancellation; DagWorkflow cancels running nodes and closes as cancelled."""
    if await _is_closed(client, execution_id):
        raise Conflict(f"cannot cancel: DAG execution {execution_id} is closed")
    try:
        await handle_of(client, execution_id).cancel()
    except RPCError as exc:
        raise await closed_conflict(client, execution_id, "cancel") from exc
    finally:
        lists_changed()


async def delete(session: AsyncSession, client: Client, execution_id: str) -> None:
    """Delete a closed execution's history and its archived events; a running one must be
    cancelled first (409)."""
    description = await describe(client, execution_id)
    if not _closed(description):
        raise Conflict(f"DAG execution {execution_id} is running; cancel it first")
    request = DeleteWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=common.WorkflowExecution(workflow_id=execution_id),
    )
    try:
        await client.workflow_service.delete_workflow_execution(request)
    except RPCError as exc:
        raise rpc_error(exc, what=f"DAG execution {execution_id}") from None
    finally:
        lists_changed()
    await final_states.forget(session, execution_id)
    await payload_blobs.forget(session, [execution_id])  # its large payloads' stored pieces
    await dag_event_stream.forget(session, execution_id)  # commits all three
