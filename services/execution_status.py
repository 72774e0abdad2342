"""One mapping from Temporal's execution status to goalflow's statuses, for goal runs and DAG
executions alike (and to the visibility clauses that filter by them).

A goal run answers the finer `RunStatus` (terminated and timed out are their own states); a DAG
execution answers the SPEC's `ExecutionStatus`, where both of those are `failed`. A run that
continued-as-new is not an end: its workflow id goes on in a newer run, so it counts as running.
"""

from enum import StrEnum

from temporalio.client import WorkflowExecutionStatus

from contracts.dag import ExecutionStatus


class RunStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    terminated = "terminated"
    timed_out = "timed_out"


_RUN_STATUS: dict[WorkflowExecutionStatus, RunStatus] = {
    WorkflowExecutionStatus.RUNNING: RunStatus.running,
    WorkflowExecutionStatus.CONTINUED_AS_NEW: RunStatus.running,
    WorkflowExecutionStatus.COMPLETED: RunStatus.succeeded,
    WorkflowExecutionStatus.FAILED: RunStatus.failed,
    WorkflowExecutionStatus.CANCELED: RunStatus.cancelled,
    WorkflowExecutionStatus.TERMINATED: RunStatus.terminated,
    WorkflowExecutionStatus.TIMED_OUT: RunStatus.timed_out,
}

VISIBILITY_STATUS: dict[RunStatus, str] = {
    RunStatus.running: "Running",
    RunStatus.succeeded: "Completed",
    RunStatus.failed: "Failed",
    RunStatus.cancelled: "Canceled",
    RunStatus.terminated: "Terminated",
    RunStatus.timed_out: "TimedOut",
}
"""`ExecutionStatus` values in visibility queries."""

_DAG_STATUS: dict[RunStatus, ExecutionStatus] = {
    RunStatus.running: ExecutionStatus.running,
    RunStatus.succeeded: ExecutionStatus.succeeded,
    RunStatus.failed: ExecutionStatus.failed,
    RunStatus.cancelled: ExecutionStatus.cancelled,
    RunStatus.terminated: ExecutionStatus.failed,
    RunStatus.timed_out: ExecutionStatus.failed,
}

LATEST_RUNS = "ExecutionStatus != 'ContinuedAsNew'"
"""Visibility lists every run of a workflow id; the ones that continued-as-new are superseded by
a newer run of the same id, so this clause lists each execution once, as its latest run."""


def run_status(status: WorkflowExecutionStatus | None) -> RunStatus:
    """A goal run's status; no status yet (just started) is running."""
    return RunStatus.running if status is None else _RUN_STATUS.get(status, RunStatus.running)


def dag_status(status: WorkflowExecutionStatus | None) -> ExecutionStatus:
    """A DAG execution's lifecycle status (a running one may still be suspended: see DagStatus)."""
    return _DAG_STATUS[run_status(status)]


def run_status_clause(status: RunStatus) -> str:
    """The visibility clause that selects goal runs in `status`."""
    return f"ExecutionStatus = '{VISIBILITY_STATUS[status]}'"


def dag_closed_clause(status: ExecutionStatus) -> str:
    """The visibility clause for closed DAG executions in `status` (every Temporal status that
    maps to it)."""
    names = sorted(VISIBILITY_STATUS[run] for run, dag in _DAG_STATUS.items() if dag == status)
    return "ExecutionStatus IN (" + ",".join(f"'{name}'" for name in names) + ")"
