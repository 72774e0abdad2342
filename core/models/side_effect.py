"""Side effects an activity performed once, so a retried activity finds its earlier result.

Temporal retries an activity whose worker died or whose attempt timed out; the new attempt runs
the same code again. A write such as `remember` (a new memory row) or a POST would then happen
twice. `activities.idempotency.once` records each such write here under a key derived from the
workflow execution, the activity id and a per-attempt sequence number: the first attempt inserts
the row as `started`, stores the result as `done`; a retry with the same key returns that result
instead of writing again. A row left `started` (the attempt died between the write and the
record) tells a non-idempotent caller that the outcome is unknown.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from core.models.common import created_at_field, json_field, updated_at_field


class SideEffectStatus(StrEnum):
    started = "started"
    done = "done"


class SideEffect(SQLModel, table=True):
    """One write performed (or begun) by an activity, keyed by where in a workflow it happened."""

    __tablename__ = "side_effects"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    """sha256 of the scope below: workflow ids may be long, a unique index wants a bounded key."""
    scope: str = Field(max_length=1000)
    """Readable origin: workflow id, run id, activity id and sequence number, for debugging."""
    kind: str = Field(max_length=63)
    """What was done (`remember`, `http_request`, ...)."""
    status: str = Field(default=SideEffectStatus.started, max_length=16)
    result: dict[str, Any] | None = json_field(nullable=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
