"""`make run` after a release: the new build's worker becomes the current version and takes over
the runs pinned to the old build that it replays, so a DAG waiting for approval across the
upgrade finishes on the new build (core/versioning.py, core/replay.py, worker.promote)."""

import secrets
import uuid
from pathlib import Path

import httpx
from temporalio.client import Client

from core import versioning
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_node
from tests.stack import running_launcher, until

GATED = {"nodes": [{"id": "gate", "tool": "noop", "input": {"value": 1}, "requires_approval": True}]}


async def _version_of(client: Client, workflow_id: str) -> str:
    info = (await client.get_workflow_handle(workflow_id).describe()).raw_description.workflow_execution_info
    override = info.versioning_info.versioning_override.pinned.version.build_id
    return override or info.versioning_info.deployment_version.build_id


async def test_a_dag_waiting_across_a_release_moves_to_the_new_build_and_finishes(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    deployment = f"goalflow-{uuid.uuid4().hex[:8]}"
    queue = f"deploy-{uuid.uuid4().hex[:8]}"
    common = {"API_TOKEN": token, "WORKER_DEPLOYMENT": deployment, "TASK_QUEUE": queue}
    headers = {"Authorization": f"Bearer {token}"}
    with running_launcher(tmp_path, WORKER_BUILD_ID="release-1", **common) as first:
        client = await Client.connect(first.temporal_target)

        async def current_is(build: str) -> bool:
            return await versioning.current_build_id(client, deployment) == build

        await until(lambda: current_is("release-1"), "release-1 to be current", first, 60)
        async with httpx.AsyncClient(base_url=first.api_url, headers=headers, timeout=30) as api:
            dag = await make_dag(api, GATED)
            execution_id = await start(api, dag["id"])
            await wait_node(api, execution_id, "gate", "waiting_approval")
        assert await _version_of(client, execution_id) == "release-1"

    # The same data directory (Temporal's SQLite file), a new release of the code.
    with running_launcher(tmp_path, WORKER_BUILD_ID="release-2", **common) as second:
        client = await Client.connect(second.temporal_target)

        async def moved() -> bool:
            return await _version_of(client, execution_id) == "release-2"

        await until(moved, "the waiting run to move to release-2", second, 90)
        assert await versioning.current_build_id(client, deployment) == "release-2"
        async with httpx.AsyncClient(base_url=second.api_url, headers=headers, timeout=30) as api:
            approved = await api.post(
                f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"}
            )
            assert approved.status_code == 200, approved.text
            body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
