"""The goalflow worker: every workflow and activity, registered explicitly, on one task queue."""

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from temporalio.activity import _Definition as ActivityDefinition
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.agent_request import agent_request
from activities.agent_tasks import load_task_attachments
from activities.catalog import load_planning_catalog
from activities.dag import load_artifact_text, offload_output
from activities.dag_events import archive_dag_events
from activities.dag_final_state import save_final_state
from activities.goals import (
    fetch_dag_status,
    load_goal_plan,
    load_goal_snapshot,
    record_plan_outcome,
    record_run_usage,
    save_goal_report,
    store_goal_plan,
)
from activities.intake import pin_intake_agents, store_message_analysis, update_message_progress
from activities.provider_limits import ProviderWaitInterceptor
from activities.providers import validate_provider
from activities.store import load_agent_snapshot, resolve_agent_snapshots
from activities.tools.registry import TOOL_ACTIVITIES
from core import metrics, observability
from core.gc_tuning import freeze_startup_heap
from core.logs import setup_logging
from core.settings import Settings, get_settings
from core.temporal import connect, ensure_search_attributes
from workflows.agent_task import AgentTaskWorkflow
from workflows.agent_test import AgentTestWorkflow
from workflows.dag import DagWorkflow
from workflows.experiment import DagExperimentWorkflow
from workflows.goal import GoalWorkflow
from workflows.message import MessageWorkflow
from workflows.planner import PlannerWorkflow

log = logging.getLogger("goalflow.worker")

WORKFLOWS: list[type] = [
    AgentTaskWorkflow,
    AgentTestWorkflow,
    DagExperimentWorkflow,
    DagWorkflow,
    GoalWorkflow,
    MessageWorkflow,
    PlannerWorkflow,
]

ACTIVITIES: list[Callable[..., Any]] = [
    agent_request,
    archive_dag_events,
    fetch_dag_status,
    load_artifact_text,
    load_agent_snapshot,
    load_goal_plan,
    load_goal_snapshot,
    load_planning_catalog,
    load_task_attachments,
    offload_output,
    pin_intake_agents,
    record_plan_outcome,
    record_run_usage,
    resolve_agent_snapshots,
    save_final_state,
    save_goal_report,
    store_goal_plan,
    store_message_analysis,
    update_message_progress,
    validate_provider,
    *TOOL_ACTIVITIES,
]


WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("contracts")
)
"""Workflow code runs sandboxed (re-imported per run, so non-determinism is caught), but the pure
Pydantic types of `contracts` (no I/O, clocks or state) come from the host: re-importing them for
every run rebuilt every model class, ~110 ms of CPU per DagWorkflow or GoalWorkflow run
(bench/agent_overhead.py)."""


def activity_name(fn: Callable[..., Any]) -> str:
    """The name an activity function is registered under."""
    defn = ActivityDefinition.from_callable(fn)
    return defn.name if defn is not None and defn.name else fn.__name__


def build_worker(
    client: Client,
    settings: Settings,
    *,
    task_queue: str | None = None,
    stand_ins: Sequence[Callable[..., Any]] = (),
) -> Worker:
    """A worker for every goalflow workflow and activity (pydantic-ai's come from its plugin).

    `stand_ins` replace the activities registered under the same names (tests' fakes)."""
    replaced = {activity_name(fn) for fn in stand_ins}
    activities = [fn for fn in ACTIVITIES if activity_name(fn) not in replaced]
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=[*activities, *stand_ins],
        workflow_runner=WORKFLOW_RUNNER,
        max_concurrent_activities=200,
        interceptors=[ProviderWaitInterceptor()],  # a queued model request shows in its heartbeats
        # A bug in workflow code fails the workflow with its error instead of retrying the
        # workflow task until a fix is deployed; domain failures are typed ApplicationErrors.
        workflow_failure_exception_types=[Exception],
    )


def cache_bytecode() -> Path | None:
    """Let the sandbox find compiled workflow modules where the source tree takes none.

    The sandbox re-imports workflow modules for every workflow run (so each run has fresh module
    state); where bytecode is not cached (PYTHONDONTWRITEBYTECODE set, or a read-only install as in
    the Docker image) each import compiles the source again: ~25 ms of CPU per DagWorkflow run
    (bench/agent_overhead.py). Bytecode then goes to a private per-user folder instead, never next
    to the sources. Returns the folder, or None when the source tree caches bytecode itself."""
    if not sys.dont_write_bytecode and os.access(Path(__file__).parent / "workflows", os.W_OK):
        return None
    folder = Path(tempfile.gettempdir()) / f"goalflow-pycache-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        stat = folder.stat()
    except OSError:
        return None
    if stat.st_uid != os.getuid() or stat.st_mode & 0o077:
        return None  # not ours alone: bytecode others can write is code they can run here
    sys.pycache_prefix = str(folder)
    sys.dont_write_bytecode = False
    return folder


async def main() -> None:
    """Connect, make sure the search attributes exist, and poll until interrupted."""
    cache_bytecode()
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    observability.setup_tracing(settings, "goalflow-worker")
    metrics.enable_temporal_metrics()  # before connecting: the client's runtime records them
    if settings.worker_metrics_address:
        metrics.serve(settings.worker_metrics_address)
    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    worker = build_worker(client, settings)
    freeze_startup_heap()
    log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_target)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
