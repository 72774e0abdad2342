"""The goalflow worker: every workflow and activity, registered explicitly, on one task queue."""

import asyncio
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_ai.durable_exec.temporal import PydanticAIPlugin
from temporalio.activity import _Definition as ActivityDefinition
from temporalio.client import Client
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.workflow import _Definition as WorkflowDefinition

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
from activities.mcp import McpActivities
from activities.provider_limits import ProviderWaitInterceptor
from activities.providers import validate_provider
from activities.store import load_agent_snapshot, resolve_agent_snapshots
from activities.tools.registry import TOOL_ACTIVITIES
from contracts.errors import WorkflowBug
from core import metrics, observability, payload_blobs, versioning
from core.gc_tuning import freeze_startup_heap
from core.logs import setup_logging
from core.mcp_client import McpPool
from core.processes import exit_now
from core.replay import move_replayable
from core.settings import WORKER_DRAIN_S, Settings, get_settings
from core.temporal import connect, data_converter, ensure_search_attributes
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


WORKFLOW_FAILURE_TYPES: list[type[BaseException]] = [WorkflowBug, ValidationError]
"""What fails a workflow for good besides its typed ApplicationErrors: goalflow's own invariant
violations, and payloads that do not decode into their model (no retry of the same code can decode
them). Never `Exception` or another superclass of Temporal's `NondeterminismError`: a release that
cannot replay a run must hold it (its workflow task retried) until a fixed or rolled-back worker
comes, not fail it for good."""


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


def workflow_name(cls: type) -> str:
    """The name a workflow class is registered under."""
    defn = WorkflowDefinition.must_from_class(cls)
    return defn.name or cls.__name__


def with_replaced(workflows: Sequence[type]) -> list[type]:
    """WORKFLOWS with those registered under the same names as `workflows` replaced by them."""
    replaced = {workflow_name(cls) for cls in workflows}
    return [*(cls for cls in WORKFLOWS if workflow_name(cls) not in replaced), *workflows]


def build_replayer(settings: Settings, *, workflows: Sequence[type] = ()) -> Replayer:
    """A Replayer with the worker's workflows (`workflows` replacing theirs, as in
    `build_worker`), sandbox, converter and plugins: what replays here replays on a worker."""
    return Replayer(
        workflows=with_replaced(workflows),
        workflow_runner=WORKFLOW_RUNNER,
        data_converter=data_converter(settings),
        plugins=[PydanticAIPlugin()],
        workflow_failure_exception_types=WORKFLOW_FAILURE_TYPES,
    )


class GoalflowWorker(Worker):
    """A Worker that also owns what its activities hold open: the MCP servers it started are
    stopped when it stops (`activities/mcp.py`)."""

    def __init__(self, client: Client, *, mcp: McpActivities, **options: Any) -> None:
        super().__init__(client, **options)
        self.mcp = mcp

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self.mcp.close()


def build_worker(
    client: Client,
    settings: Settings,
    *,
    task_queue: str | None = None,
    stand_ins: Sequence[Callable[..., Any]] = (),
    workflows: Sequence[type] = (),
    build_id: str | None = None,
    drain: timedelta | None = None,
) -> GoalflowWorker:
    """A worker for every goalflow workflow and activity (pydantic-ai's come from its plugin).

    `stand_ins` replace the activities registered under the same names (tests' fakes), and
    `workflows` the workflows registered under the same names (a release's other code); `build_id`
    overrides the version a versioned worker polls as; `drain` is how long a shutdown lets running
    activities finish (none by default: tests' workers stop at once)."""
    replaced = {activity_name(fn) for fn in stand_ins}
    mcp = McpActivities(settings, McpPool())
    own: list[Callable[..., Any]] = [*ACTIVITIES, *mcp.activities()]
    activities = [fn for fn in own if activity_name(fn) not in replaced]
    return GoalflowWorker(
        client,
        mcp=mcp,
        task_queue=task_queue or settings.task_queue,
        workflows=with_replaced(workflows),
        activities=[*activities, *stand_ins],
        deployment_config=versioning.deployment_config(settings, build_id=build_id),
        graceful_shutdown_timeout=drain or timedelta(),
        workflow_runner=WORKFLOW_RUNNER,
        max_concurrent_activities=200,
        interceptors=[ProviderWaitInterceptor()],  # a queued model request shows in its heartbeats
        workflow_failure_exception_types=WORKFLOW_FAILURE_TYPES,
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
    worker = build_worker(client, settings, drain=timedelta(seconds=WORKER_DRAIN_S))
    stopping: list[asyncio.Task[None]] = []  # holds the pruning and shutdown tasks while they run
    freeze_startup_heap()
    log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_target)
    polling = asyncio.create_task(worker.run())
    # Large payloads' stored pieces of runs Temporal no longer holds go too (core/payload_blobs.py).
    stopping.append(asyncio.create_task(payload_blobs.prune_forever(settings, client)))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Stop polling, let running activities finish (WORKER_DRAIN_S), then exit.
        loop.add_signal_handler(signum, lambda: stopping.append(asyncio.create_task(worker.shutdown())))
    if settings.worker_versioning and settings.worker_promote:
        await promote(client, settings)
    await polling
    observability.flush_traces()  # the process ends with os._exit, which skips atexit
    log.info("worker stopped")


async def promote(client: Client, settings: Settings) -> None:
    """Make this worker's build the one new runs start on, and move onto it every run pinned to an
    older build that this code replays (core/replay.py). A failure here leaves runs where they
    are, never stops the worker."""
    version = versioning.build_version(settings)
    try:
        await versioning.set_current(client, version)
        await move_replayable(client, build_replayer(settings), version)
    except Exception:
        log.exception("build %s could not be made current", version.build_id)


if __name__ == "__main__":
    asyncio.run(main())
    exit_now(0)
