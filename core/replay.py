"""Replaying real runs' histories against the code at hand: the release gate an operator runs
before shipping (`python -m cli replay --since 7d`), and the check that lets a new build take over
runs pinned to an older one (`move_replayable`).

A history replays when today's workflow code issues the same commands the run recorded; one that
does not would hold the run (its workflow task retried) on a worker of this code.
"""

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflow.v1 import VersioningOverride, WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionOptionsRequest
from temporalio.client import Client, WorkflowHistory
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Replayer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayOutcome:
    """One run's replay: `error` is None when today's code replays its history."""

    workflow_id: str
    run_id: str
    workflow_type: str
    error: str | None


def since_clause(since: timedelta, *, now: datetime | None = None) -> str:
    """The visibility clause for runs started within `since` (running or closed)."""
    start = (now or datetime.now(UTC)) - since
    return f"StartTime >= '{start.strftime('%Y-%m-%dT%H:%M:%SZ')}'"


async def replay_query(
    client: Client, replayer: Replayer, query: str, *, limit: int | None = None
) -> list[ReplayOutcome]:
    """Replay the history of every run `query` lists (at most `limit`), each on its own."""
    outcomes: list[ReplayOutcome] = []
    listed: dict[str, tuple[str, str]] = {}

    async def histories() -> AsyncIterator[WorkflowHistory]:
        async for execution in client.list_workflows(query, limit=limit):
            listed[execution.run_id] = (execution.id, execution.workflow_type)
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            yield await handle.fetch_history()

    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    for run_id, (workflow_id, workflow_type) in listed.items():
        failure = results.replay_failures.get(run_id)
        error = None if failure is None else f"{type(failure).__name__}: {failure}"[:2000]
        outcomes.append(ReplayOutcome(workflow_id, run_id, workflow_type, error))
    return outcomes


def pinned_elsewhere_clause(version: WorkerDeploymentVersion) -> str:
    """Running runs of the deployment that execute on another build than `version`."""
    # The server writes `deployment:build`; older servers wrote `deployment.build`.
    spellings = f"'{version.deployment_name}:{version.build_id}', '{version.to_canonical_string()}'"
    return (
        "ExecutionStatus = 'Running'"
        f" AND TemporalWorkerDeployment = '{version.deployment_name}'"
        f" AND TemporalWorkerDeploymentVersion NOT IN ({spellings})"
        " AND TemporalWorkflowVersioningBehavior = 'Pinned'"
    )


async def pin_to(client: Client, workflow_id: str, run_id: str, version: WorkerDeploymentVersion) -> None:
    """Pin one run to `version` (a versioning override: its next workflow task goes there)."""
    override = VersioningOverride(
        pinned=VersioningOverride.PinnedOverride(
            behavior=VersioningOverride.PinnedOverrideBehavior.PINNED_OVERRIDE_BEHAVIOR_PINNED,
            version=version._to_proto(),
        )
    )
    await client.workflow_service.update_workflow_execution_options(
        UpdateWorkflowExecutionOptionsRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            workflow_execution_options=WorkflowExecutionOptions(versioning_override=override),
            update_mask=FieldMask(paths=["versioning_override"]),
            identity=client.identity,
        )
    )


async def move_replayable(
    client: Client, replayer: Replayer, version: WorkerDeploymentVersion
) -> tuple[list[ReplayOutcome], list[ReplayOutcome]]:
    """Move every run pinned to another build onto `version` when this code replays its history;
    leave the others where they are (a worker of their build finishes them). Answers (moved, kept).

    Without it a single-host deploy (`make run` after a pull) would strand every pinned run on a
    build no worker serves any more; with it only the runs this code provably cannot continue wait
    for their old build."""
    outcomes = await replay_query(client, replayer, pinned_elsewhere_clause(version))
    moved = [o for o in outcomes if o.error is None]
    kept = [o for o in outcomes if o.error is not None]
    for outcome in moved:
        await pin_to(client, outcome.workflow_id, outcome.run_id, version)
    if moved or kept:
        log.info(
            "build %s took over %d pinned run(s) that replay on it; %d stay on their build: %s",
            version.build_id,
            len(moved),
            len(kept),
            ", ".join(o.workflow_id for o in kept[:10]) or "none",
        )
    return moved, kept
