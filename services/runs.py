"""Goal runs: GoalWorkflow executions, read from Temporal (visibility, describe, query, result).

Nothing here is stored in Postgres: a run's status, steps and result are Temporal's. A run id is
its workflow id (`goal-<goalId>-<shortid>`, or `goal-<goalId>-<time>` when a schedule started it).
"""

from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError

from contracts.dag import DagStatus
from contracts.goals import RUN_KIND_GOAL, GoalProgress, GoalRunResult, GoalStep, StepStatus
from contracts.runs import RunDetail, RunFailure, RunStatus, RunSummary
from contracts.search import GOAL_ID
from contracts.workflow_names import DAG_STATUS_QUERY, GOAL_STEPS_QUERY, GOAL_WORKFLOW
from core import payload_blobs
from core.errors import Conflict, NotFound
from core.settings import Settings
from services.execution_status import VISIBILITY_STATUS, run_status, run_status_clause
from services.read_cache import ReadCache
from services.temporal_errors import application_cause, rpc_error
from services.visibility import list_page, lists_changed

QUERY_TIMEOUT = timedelta(seconds=10)


def _status(status: WorkflowExecutionStatus | None) -> RunStatus:
    return run_status(status)


def _goal_id(attributes: Any) -> int | None:
    value = attributes.get(GOAL_ID) if attributes is not None else None
    return int(value) if value is not None and str(value).isdigit() else None


def _summary(settings: Settings, wf: WorkflowExecution) -> RunSummary:
    duration = None
    if wf.start_time is not None and wf.close_time is not None:
        duration = int((wf.close_time - wf.start_time).total_seconds() * 1000)
    return RunSummary(
        id=wf.id,
        run_id=wf.run_id,
        goal_id=_goal_id(wf.typed_search_attributes),
        status=_status(wf.status),
        started_at=wf.start_time,
        closed_at=wf.close_time,
        duration_ms=duration,
        web_ui_url=settings.workflow_ui_url(wf.id),
    )


def runs_query(*, goal_id: int | None = None, status: RunStatus | None = None) -> str:
    """The visibility query for goal runs (the same one works in `temporal workflow list`)."""
    query = f"RunKind = '{RUN_KIND_GOAL}'"
    if goal_id is not None:
        query += f" AND GoalId = '{goal_id}'"
    if status is not None:
        query += f" AND {run_status_clause(status)}"
    return query


async def page_runs(
    client: Client,
    settings: Settings,
    *,
    goal_id: int | None,
    status: RunStatus | None,
    limit: int,
    cursor: str | None = None,
    offset: int = 0,
) -> tuple[list[RunSummary], str | None]:
    """Goal runs newest first, from Temporal visibility, and the cursor of the next page."""
    query = runs_query(goal_id=goal_id, status=status)
    rows, next_cursor = await list_page(
        client, query, limit=limit, cursor=cursor, offset=offset, what="goal runs"
    )
    return [_summary(settings, wf) for wf in rows], next_cursor


async def list_runs(
    client: Client,
    settings: Settings,
    *,
    goal_id: int | None,
    status: RunStatus | None,
    limit: int,
    offset: int,
) -> list[RunSummary]:
    """Goal runs newest first, from Temporal visibility (paged by offset)."""
    found, _ = await page_runs(client, settings, goal_id=goal_id, status=status, limit=limit, offset=offset)
    return found


async def count_by_status(client: Client, run_kind: str = RUN_KIND_GOAL) -> dict[str, int]:
    """How many runs of a kind (goal runs by default) Temporal holds in each status."""
    counts: dict[str, int] = {}
    for status in VISIBILITY_STATUS:
        query = f"RunKind = '{run_kind}' AND {run_status_clause(status)}"
        counts[status.value] = (await client.count_workflows(query)).count
    return counts


async def _describe(client: Client, run_id: str) -> WorkflowExecutionDescription:
    if not run_id.startswith("goal-"):
        raise NotFound(f"run {run_id} not found")
    try:
        description = await client.get_workflow_handle(run_id).describe()
    except RPCError as exc:
        raise rpc_error(exc, what=f"run {run_id}") from None
    if description.workflow_type != GOAL_WORKFLOW:
        raise NotFound(f"run {run_id} not found")
    return description


async def ensure_exists(client: Client, run_id: str) -> None:
    """Resolve a run before a stream starts, so an unknown id is a 404, not an empty stream."""
    await _describe(client, run_id)


async def _progress(handle: WorkflowHandle[Any, Any]) -> GoalProgress | None:
    """The `steps` query's answer; None where the run cannot answer (no worker, no history)."""
    try:
        return await handle.query(GOAL_STEPS_QUERY, result_type=GoalProgress, rpc_timeout=QUERY_TIMEOUT)
    except (WorkflowQueryFailedError, RPCError):
        return None


CLOSED_PROGRESS: ReadCache[GoalProgress] = ReadCache(max_entries=1024)
"""The `steps` answer of a run that closed without a result (failed, cancelled, terminated): it
never changes, and asking again would make a worker replay the whole run. Keyed by run id, and
describe is asked first on every read, so a reset or deleted run is never answered from here."""


async def _closed_or_live_progress(
    client: Client, handle: WorkflowHandle[Any, Any], description: WorkflowExecutionDescription
) -> GoalProgress | None:
    """The `steps` answer; a closed run's is asked once per API process."""
    if _status(description.status) == RunStatus.running:
        return await _progress(handle)
    key = (client.namespace, handle.id, description.run_id)
    progress = CLOSED_PROGRESS.peek(key)
    if progress is None:
        progress = await _progress(handle)
        if progress is not None:
            CLOSED_PROGRESS.put(key, progress)
    return progress.model_copy(deep=True) if progress is not None else None


async def _result(handle: WorkflowHandle[Any, Any]) -> tuple[GoalRunResult | None, RunFailure | None]:
    try:
        return await handle.result(follow_runs=False, rpc_timeout=QUERY_TIMEOUT), None
    except RPCError as exc:  # e.g. deleted between describe and this read
        raise rpc_error(exc, what=f"run {handle.id}") from None
    except WorkflowFailureError as exc:
        cause = application_cause(exc)
        if cause is not None:
            return None, RunFailure(type=cause.type, message=cause.message)
        return None, RunFailure(type=type(exc.cause).__name__, message=str(exc.cause))


async def get_run(client: Client, settings: Settings, run_id: str) -> RunDetail:
    """Status and timings from describe; usage and steps from the query or the result."""
    description = await _describe(client, run_id)
    handle = client.get_workflow_handle(run_id, run_id=description.run_id, result_type=GoalRunResult)
    detail = RunDetail(**_summary(settings, description).model_dump())
    if detail.status == RunStatus.succeeded:
        detail.result, _ = await _result(handle)
        if detail.result is not None:
            detail.usage = detail.result.usage
            detail.dag_workflow_id = detail.result.dag_workflow_id
            detail.phase = "finished"
        return detail
    if detail.status == RunStatus.failed:
        _, detail.failure = await _result(handle)
    elif detail.status in (RunStatus.terminated, RunStatus.timed_out, RunStatus.cancelled):
        detail.failure = RunFailure(type=detail.status.value, message=f"run {detail.status.value}")
    progress = await _closed_or_live_progress(client, handle, description)
    if progress is not None:
        detail.usage = progress.usage
        detail.phase = progress.phase
        detail.dag_workflow_id = progress.dag_workflow_id
    return detail


def _merge_live_nodes(steps: list[GoalStep], live: DagStatus) -> list[GoalStep]:
    """Node steps as the running DAG reports them right now."""
    by_id = {node.id: node for node in live.nodes}
    merged = []
    for step in steps:
        node = by_id.get(step.id) if step.kind == "node" else None
        if node is not None:
            step = step.model_copy(
                update={
                    "status": StepStatus(node.status.value),
                    "detail": node.output_preview or step.detail,
                    "usage": node.usage,
                    "artifact": node.artifact,
                    "error": node.error,
                    "started_at": node.started_at,
                    "finished_at": node.finished_at,
                }
            )
        merged.append(step)
    return merged


async def run_progress(client: Client, run_id: str) -> tuple[RunStatus, GoalProgress]:
    """The run's status and its own steps (the `steps` query, or the result once it finished),
    without asking the child DAG: node states come from the DAG itself."""
    description = await _describe(client, run_id)
    handle = client.get_workflow_handle(run_id, run_id=description.run_id, result_type=GoalRunResult)
    status = _status(description.status)
    if status == RunStatus.succeeded:
        result, _ = await _result(handle)
        if result is not None:
            return status, GoalProgress(
                goal_id=result.goal_id,
                phase="finished",
                steps=result.steps,
                usage=result.usage,
                dag_workflow_id=result.dag_workflow_id,
            )
    progress = await _closed_or_live_progress(client, handle, description)
    if progress is None:
        raise Conflict(f"run {run_id} cannot report its steps now (no worker answered)")
    return status, progress


async def get_steps(client: Client, run_id: str) -> GoalProgress:
    """Live steps while the run works (its query, and the child DAG's for node states);
    the result's steps once it finished."""
    status, progress = await run_progress(client, run_id)
    if status == RunStatus.running and progress.phase == "running" and progress.dag_workflow_id:
        try:
            live = await client.get_workflow_handle(progress.dag_workflow_id).query(
                DAG_STATUS_QUERY, result_type=DagStatus, rpc_timeout=QUERY_TIMEOUT
            )
        except (WorkflowQueryFailedError, RPCError):
            live = None
        if live is not None:
            progress.steps = _merge_live_nodes(progress.steps, live)
            progress.usage = progress.usage + live.usage
    return progress


async def delete_run(session: AsyncSession, client: Client, run_id: str) -> None:
    """Delete a closed run's history (and its large payloads' stored pieces). A running one is
    refused (409): a DELETE never stops work, `cancel_run` does (the same rule as DAG executions
    and goals)."""
    description = await _describe(client, run_id)
    if _status(description.status) == RunStatus.running:
        raise Conflict(f"run {run_id} is running; cancel it first (POST /api/v1/runs/{run_id}/cancel)")
    try:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=common.WorkflowExecution(workflow_id=run_id, run_id=description.run_id),
            )
        )
    except RPCError as exc:
        raise rpc_error(exc, what=f"run {run_id}") from None
    finally:
        lists_changed()
    await payload_blobs.forget(session, [run_id])
    await session.commit()


async def cancel_run(client: Client, run_id: str) -> None:
    """Request cancellation of a running run (409 when it already closed)."""
    description = await _describe(client, run_id)
    if _status(description.status) != RunStatus.running:
        raise Conflict(f"cannot cancel: run {run_id} is closed")
    handle = client.get_workflow_handle(run_id, run_id=description.run_id)
    try:
        await handle.cancel()
    except RPCError as exc:
        raise rpc_error(exc, what=f"run {run_id}") from None
    finally:
        lists_changed()


async def running_runs_of_goal(client: Client, goal_id: int) -> list[str]:
    """The ids of a goal's running runs (at most 20: enough to name them in a refusal)."""
    query = runs_query(goal_id=goal_id, status=RunStatus.running)
    return [run.id async for run in client.list_workflows(query, limit=20)]
