"""A bug in workflow code fails the workflow with its error instead of retrying the workflow task
forever (the worker's `workflow_failure_exception_types`)."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError

from contracts.agents import AgentTestInput
from core.settings import Settings
from worker import build_worker
from workflows.agent_test import AgentTestWorkflow


@activity.defn(name="load_agent_snapshot")
async def garbled_snapshot(agent_id: int) -> dict[str, Any]:
    """A stand-in whose result cannot decode as an AgentSnapshot: a bug, not a domain failure."""
    return {"not": "an agent snapshot"}


async def test_workflow_bug_fails_the_workflow_instead_of_retrying_its_task(
    client: Client, settings: Settings
) -> None:
    queue = f"bug-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, task_queue=queue, stand_ins=[garbled_snapshot]):
        handle = await client.start_workflow(
            AgentTestWorkflow.run,
            AgentTestInput(agent_id=1, prompt="hi"),
            id=f"agent-test-bug-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            # Without the failure types the workflow task would retry until this timeout.
            execution_timeout=timedelta(seconds=60),
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert "ValidationError" in f"{type(cause.__cause__ or cause).__name__} {cause}"
    history = await handle.fetch_history()
    assert history.events[-1].HasField("workflow_execution_failed_event_attributes")
