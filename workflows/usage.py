"""The usage ledger, written by every top-level run: `GET /stats` sums it.

A run records its own tokens once, when it closes, whatever way it closes. A child run (a goal's
DAG, an experiment's cells) records nothing: its parent's total includes it, so nothing is
counted twice. Goal runs and agent tasks record through their own code (shipped before this
helper); the runs added later record here, behind one patch so their older histories replay.

A workflow that runs local activities must decide `USAGE_PATCH` in its first activation, as
DagWorkflow does (`workflows/dag_patches.py`): asked first here, right after a local activity
resolved, the patch can come before its marker on replay and fail it.
"""

from typing import Literal

from temporalio import workflow

from contracts.goals import RecordUsageInput
from contracts.usage import TokenUsage
from workflows.store_options import STORE_RETRY, STORE_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from activities.goals import record_run_usage

USAGE_PATCH = "record-usage"
"""Since this patch DAG executions, planner runs, agent tests and experiments record their usage."""


async def record_usage(
    run_kind: str,
    status: Literal["succeeded", "failed", "cancelled"],
    usage: TokenUsage,
    *,
    agent_name: str | None = None,
    goal_id: int | None = None,
) -> None:
    """Write this run's usage to the ledger, unless it is a child (its parent counts it)."""
    if workflow.info().parent is not None or not workflow.patched(USAGE_PATCH):
        return
    await workflow.execute_activity(
        record_run_usage,
        RecordUsageInput(
            workflow_id=workflow.info().workflow_id,
            run_kind=run_kind,
            status=status,
            usage=usage,
            agent_name=agent_name,
            goal_id=goal_id,
        ),
        start_to_close_timeout=STORE_TIMEOUT,
        retry_policy=STORE_RETRY,
        activity_id="record-usage",
        summary=f"record usage ({usage.total_tokens} tokens)",
    )
