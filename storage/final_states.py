"""Final states of closed DAG execution runs: written by the run as it closes (an activity),
read by the API instead of a `status` query that would make a worker replay the history.

A row is the run's last `status` answer. One run, one row: a retried write overwrites it with the
same state. Only runs that close through DagWorkflow's own code write one; a terminated or timed
out run (closed by the server) has none, and its readers fall back to the query.
"""

from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.dag import DagStatus, FinalStateInput
from core.db import upsert_insert
from core.models import DagFinalState
from core.models.common import utcnow


async def save(session: AsyncSession, final: FinalStateInput) -> None:
    """Upsert the run's row (the caller commits)."""
    values = {
        "workflow_id": final.workflow_id,
        "run_id": final.run_id,
        "status": final.status.model_dump(mode="json"),
        "created_at": utcnow(),
    }
    statement = upsert_insert(session)(DagFinalState).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["workflow_id", "run_id"], set_={"status": statement.excluded.status}
    )
    await session.exec(statement)


async def load(session: AsyncSession, workflow_id: str, run_id: str) -> DagStatus | None:
    """The state the run closed with, if it wrote one."""
    row = await session.get(DagFinalState, (workflow_id, run_id))
    return DagStatus.model_validate(row.status) if row is not None else None


async def forget(session: AsyncSession, workflow_id: str) -> None:
    """Drop every run's row of an execution (its history is being deleted; the caller commits)."""
    await session.exec(delete(DagFinalState).where(col(DagFinalState.workflow_id) == workflow_id))
