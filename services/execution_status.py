"""One mapping from Temporal's execution status to goalflow's statuses, for goal runs and DAG
executions alike (and to the visibility clauses that filter by them), and what a running node's
pending activities add to its status (waiting for provider capacity).

A goal run answers the finer `RunStatus` (terminated and timed out are their own states); a DAG
execution answers the SPEC's `ExecutionStatus`, where both of those are `failed`. A run that
continued-as-new is not an end: its workflow id goes on in a newer run, so it counts as running.
"""

import re
from collections.abc import Collection, Sequence
from typing import Any

from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.converter import DataConverter

from contracts.agents import AGENT_ACTIVITY_ID
from contracts.dag import ExecutionStatus, NodeState, NodeStatus
from contracts.mcp import MCP_CALL_ACTIVITY
from contracts.provider_limits import ProviderWait, read_wait
from contracts.runs import RunStatus

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


# --- nodes waiting for provider capacity --------------------------------------------------------

AGENT_ACTIVITY = AGENT_ACTIVITY_ID
"""An `agent_request` activity of a DAG node (contracts/agents.py)."""
AGENT_MCP_ACTIVITY = re.compile(r"^(?P<node>.+)-\d+-agent-\d+-mcp-\d+(?:-input-\d+)?$")
"""An agent node's `mcp_call_tool` activity: `<node id>-<attempt>-agent-<try>-mcp-<n>`."""
MCP_ACTIVITY = re.compile(r"^(?P<node>.+)-\d+(?:-input-\d+)?$")
"""A tool node's `mcp_call_tool` activity: `<node id>-<attempt>`, `-input-<n>` after answers."""
MCP_TASK_ACTIVITY = re.compile(r"^(?P<node>.+?)-\d+(?:-agent-\d+-mcp-\d+)?-task-(?:\d+|\d+-answer|cancel)$")
"""The polls of a task an MCP server runs a node's call as (`...-task-<n>`)."""
NODE_ACTIVITIES = (
    AGENT_MCP_ACTIVITY,
    MCP_TASK_ACTIVITY,
    AGENT_ACTIVITY,
    re.compile(r"^(?P<node>.+)-\d+-input-\d+$"),
    re.compile(r"^(?P<node>.+)-\d+-load-\d+$"),
    re.compile(r"^(?P<node>.+)-\d+-store$"),
    re.compile(r"^(?P<node>.+)-\d+$"),
)
"""Every activity id DagWorkflow names after a node (workflows/dag_nodes.py)."""


def _node_of(activity_id: str, running: Collection[str], patterns: Sequence[re.Pattern[str]]) -> str | None:
    """The running node an activity id names, if any."""
    for pattern in patterns:
        match = pattern.match(activity_id)
        if match is not None and match["node"] in running:
            return match["node"]
    return None


async def provider_waits(
    nodes: list[NodeState], description: WorkflowExecutionDescription, converter: DataConverter
) -> list[NodeState]:
    """`nodes`, the running ones whose model request is queued for provider capacity marked
    ("waiting for provider capacity (...)"), and the last progress an MCP tool reported to a
    running node (a tool node, or an agent node's call) as its `progress`.

    The waiting activity says so in its heartbeat details (`contracts/provider_limits.py`), which
    `describe` answers with the workflow's pending activities. An `agent_request` activity names
    its node in its id. The model requests of pydantic-ai's agent loop have the SDK's numbered ids:
    they go to the running nodes no pending activity names when there is one waiting request for
    each of those (otherwise which node waits is not known, and none is marked)."""
    pending = list(description.raw_description.pending_activities)
    waits: dict[str, ProviderWait] = {}
    running = {node.id for node in nodes if node.status == NodeStatus.running}
    progress: dict[str, dict[str, Any]] = {}
    for activity in pending:
        payloads = list(activity.heartbeat_details.payloads)
        if not payloads:
            continue
        try:
            details = await converter.decode(payloads)
        except Exception:  # not goalflow's, or under a codec key this process does not hold
            continue
        wait = read_wait(details[0]) if details else None
        if wait is not None:
            waits[activity.activity_id] = wait
        elif activity.activity_type.name == MCP_CALL_ACTIVITY and details and isinstance(details[0], dict):
            node_id = _node_of(activity.activity_id, running, [AGENT_MCP_ACTIVITY, MCP_ACTIVITY])
            if node_id is not None:  # an MCP tool's progress notifications (activities/mcp.py)
                progress[node_id] = {k: details[0].get(k) for k in ("progress", "total", "message")}
    if progress:
        nodes = [
            node.model_copy(update={"progress": progress[node.id]}) if node.id in progress else node
            for node in nodes
        ]
    if not waits:
        return nodes
    waiting: dict[str, ProviderWait] = {}
    unnamed: list[ProviderWait] = []
    for activity_id, wait in waits.items():
        node_id = _node_of(activity_id, running, [AGENT_ACTIVITY])
        if node_id is not None:
            waiting[node_id] = wait
        else:
            unnamed.append(wait)
    named = {_node_of(activity.activity_id, running, NODE_ACTIVITIES) for activity in pending}
    unclaimed = sorted(running - named)
    if unnamed and len(unnamed) == len(unclaimed):
        waiting.update(zip(unclaimed, unnamed, strict=True))
    return [
        node.model_copy(update={"waiting_reason": waiting[node.id].reason()})
        if node.id in waiting and node.waiting_reason is None
        else node
        for node in nodes
    ]
