"""The final state of each closed DAG execution run, written by the run itself as it closes.

Reading a closed execution through the `status` query makes a worker replay its whole history
once the workflow has left the worker's cache (about a second for a small execution, under load);
this row answers the same `DagStatus` from one primary-key read. Keyed by (workflow id, run id),
so a retried write finds its row and a reset execution (a new run) is never answered with its
old run's state.
"""

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from core.models.common import created_at_field, json_field


class DagFinalState(SQLModel, table=True):
    """One closed run's `DagStatus`, as JSON."""

    __tablename__ = "dag_final_state"

    workflow_id: str = Field(primary_key=True, max_length=255)
    run_id: str = Field(primary_key=True, max_length=64)
    status: dict[str, Any] = json_field(default_factory=dict)
    created_at: datetime = created_at_field()
    """When the row was written: the run closed then (kept for pruning by age)."""
