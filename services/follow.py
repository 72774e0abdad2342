"""Following a workflow that a request answered 202 for (agent test, task, planner).

A waiting request gives up after `wait_timeout_s` and hands out the workflow id; this is where
the caller gets the outcome later, from Temporal itself (no second copy of run state).
"""

from dataclasses import dataclass
from typing import Any, Literal

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError

from core.errors import NotFound
from core.settings import Settings
from services.temporal_errors import application_cause, rpc_error

FOLLOWABLE_PREFIXES = ("agent-test-", "task-", "planner-")
"""Workflows a waiting request may hand out; others have their own resources (DAGs, goal runs)."""

FollowStatus = Literal["running", "succeeded", "failed", "cancelled"]

_STATUS: dict[WorkflowExecutionStatus, FollowStatus] = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.COMPLETED: "succeeded",
    WorkflowExecutionStatus.CANCELED: "cancelled",
}


@dataclass
class Followed:
    """Where a handed-out workflow stands; `result` once it succeeded, `error` once it failed.
    A plain value: the response model is api/routes/workflows.py's, the only one answering it."""

    workflow_id: str
    status: FollowStatus
    web_ui_url: str
    result: Any = None
    error: str | None = None
    error_type: str | None = None


async def follow(client: Client, settings: Settings, workflow_id: str) -> Followed:
    """The state, and the result or failure, of one handed-out workflow."""
    if not workflow_id.startswith(FOLLOWABLE_PREFIXES):
        raise NotFound(f"workflow {workflow_id} is not one a request hands out")
    handle = client.get_workflow_handle(workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        raise rpc_error(exc, what=f"workflow {workflow_id}") from None
    status: FollowStatus = _STATUS.get(description.status or WorkflowExecutionStatus.RUNNING, "failed")
    answer = Followed(
        workflow_id=workflow_id, status=status, web_ui_url=settings.workflow_ui_url(workflow_id)
    )
    if status not in ("succeeded", "failed"):
        return answer
    try:
        answer.result = await handle.result(follow_runs=False)
    except WorkflowFailureError as exc:
        cause = application_cause(exc)
        answer.error = cause.message if cause is not None else str(exc.cause)
        answer.error_type = cause.type if cause is not None else type(exc.cause).__name__
    except RPCError as exc:
        raise rpc_error(exc, what=f"workflow {workflow_id}") from None
    return answer
