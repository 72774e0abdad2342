"""Runs held by their workers: a workflow task that fails on every attempt (above all because this
release's workflow code cannot replay the run's history) is retried, not failed, so the run waits
for a fixed or rolled-back worker. Held runs are shown, never hidden: in the run's status
(`waiting_reason`) and in `/health/ready`.

Temporal marks a run whose workflow task keeps failing with the `TemporalReportedProblems` search
attribute (after `system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute` attempts,
set by core/launcher.py), which is what the health check counts; a run's own reason comes from its
history, whose last workflow task failure the server keeps.
"""

from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionDescription

HELD_QUERY = "ExecutionStatus = 'Running' AND TemporalReportedProblems IS NOT NULL"
CANNOT_REPLAY = "held: this worker cannot replay it (deploy the code it started on, or a fix)"
LISTED_MAX = 10


async def held_reason(client: Client, description: WorkflowExecutionDescription) -> str | None:
    """Why a running run is held, or None when its workflow tasks are not failing.

    A pending workflow task on its second attempt or later means the ones before it failed (or
    timed out); the newest failure in the history says which."""
    if description.raw_description.pending_workflow_task.attempt < 2:
        return None
    reply = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=description.id, run_id=description.run_id),
            maximum_page_size=50,
        )
    )
    for event in reply.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return None
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failed = event.workflow_task_failed_event_attributes
            if failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR:
                return CANNOT_REPLAY
            return f"held: its workflow task fails on every attempt ({failed.failure.message[:200]})"
    return None


async def held_runs(client: Client) -> dict[str, Any]:
    """The readiness report of held runs: ok while there are none."""
    count = (await client.count_workflows(HELD_QUERY)).count
    report: dict[str, Any] = {"ok": count == 0, "held": count}
    if count:
        ids = [run.id async for run in client.list_workflows(HELD_QUERY, limit=LISTED_MAX)]
        report["runs"] = ids
        report["error"] = (
            f"{count} run(s) held: their workflow task fails on every attempt, usually because "
            "this release cannot replay them; roll back or deploy a fix and they go on"
        )
    return report
