"""Temporal Worker Versioning for goalflow's worker: a build id derived from the workflow code, the
deployment it polls as, and making a build the one new runs start on.

A run of a `PINNED` workflow keeps executing on the build it started on, so a release that changes
workflow code never has to replay a run that started under other code; new runs start on the
deployment's current build. The build id is a hash of what workflow tasks execute (`workflows/`,
`contracts/` and the SDK versions), so a release that changes only activities, the API or the bot
keeps the build id and every run simply goes on on the new workers.
"""

import asyncio
import hashlib
import logging
from importlib import metadata
from pathlib import Path

from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from core.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ("workflows", "contracts")
"""What a workflow task runs: the workflow modules and the pure types they pass through."""
SDKS = ("temporalio", "pydantic-ai-slim")
"""Libraries whose code runs inside workflow tasks (the agent loop), so their version is the build's."""
SET_CURRENT_TIMEOUT_S = 60.0


def code_build_id(root: Path = ROOT) -> str:
    """A short hash of every workflow-side source file (path and bytes) and the SDK versions."""
    digest = hashlib.sha256()
    for folder in CODE_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for sdk in SDKS:
        try:
            digest.update(f"{sdk}=={metadata.version(sdk)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{sdk}==?\0".encode())
    return digest.hexdigest()[:12]


def build_version(settings: Settings) -> WorkerDeploymentVersion:
    """The deployment version this process's worker polls as (WORKER_BUILD_ID overrides the hash)."""
    return WorkerDeploymentVersion(
        deployment_name=settings.worker_deployment,
        build_id=settings.worker_build_id or code_build_id(),
    )


def deployment_config(settings: Settings, *, build_id: str | None = None) -> WorkerDeploymentConfig | None:
    """The worker's deployment options, or None when versioning is off (an unversioned worker).

    Every workflow is pinned. DagWorkflow, GoalWorkflow, MessageWorkflow, AgentTaskWorkflow and
    DagExperimentWorkflow wait for people or timers and must come back to the code that wrote
    their history. The short ones (PlannerWorkflow, AgentTestWorkflow) would be candidates for
    auto-upgrade, but a behaviour named on `workflow.defn` is refused by the server from an
    unversioned worker (WORKER_VERSIONING=false), and a new build takes over every pinned run it
    provably replays anyway (`core.replay.move_replayable`), which auto-upgrade would do unchecked."""
    if not settings.worker_versioning:
        return None
    version = build_version(settings)
    if build_id is not None:
        version = WorkerDeploymentVersion(deployment_name=version.deployment_name, build_id=build_id)
    return WorkerDeploymentConfig(
        version=version,
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


async def current_build_id(client: Client, deployment: str) -> str | None:
    """The build id new runs of `deployment` start on, or None (no such deployment, or no current)."""
    try:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    current = described.worker_deployment_info.routing_config.current_deployment_version
    return current.build_id or None


async def set_current(
    client: Client, version: WorkerDeploymentVersion, *, timeout_s: float = SET_CURRENT_TIMEOUT_S
) -> None:
    """Make `version` the one new runs start on, once the server has seen its worker poll.

    A version is known only after its worker's first poll reaches the server, so the call is
    retried until it is (or `timeout_s` passes). Idempotent: every worker process of a release
    may call it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace,
                    deployment_name=version.deployment_name,
                    build_id=version.build_id,
                    identity=client.identity,
                )
            )
            log.info("build %s is current: new runs start on it", version.build_id)
            return
        except RPCError as exc:
            retriable = exc.status in (
                RPCStatusCode.NOT_FOUND,
                RPCStatusCode.FAILED_PRECONDITION,
                RPCStatusCode.ABORTED,
                RPCStatusCode.UNAVAILABLE,
                RPCStatusCode.RESOURCE_EXHAUSTED,
            )
            if not retriable or loop.time() > deadline:
                raise
        await asyncio.sleep(0.2)
