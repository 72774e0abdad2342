"""DAG events kept outside the workflow's stream.

A DagWorkflow stream is truncated at continue-as-new (only the newest events travel to the next
run); the events about to be dropped are written here first, so `GET /dag-executions/{id}/events`
can replay every offset. Keyed by (workflow id, stream offset): a retried write finds its rows.
"""

from typing import Any

from sqlmodel import Field, SQLModel

from core.models.common import json_field


class DagEventRecord(SQLModel, table=True):
    """One archived event of an execution's stream."""

    __tablename__ = "dag_events"

    workflow_id: str = Field(primary_key=True, max_length=255)
    seq: int = Field(primary_key=True)
    """The event's stream offset, which is its SSE id (`DagEvent.seq` is this plus one)."""
    payload: dict[str, Any] = json_field(default_factory=dict)
