"""Column helpers shared by the tables."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

JSONType = JSON().with_variant(JSONB(), "postgresql")

MAX_DB_ID = 2**31 - 1
"""Integer primary keys are int32 in PostgreSQL; a larger id must be a 422, not a DataError."""


def utcnow() -> datetime:
    """Timezone-aware now; naive datetimes compare wrongly across SQLite and PostgreSQL."""
    return datetime.now(UTC)


def created_at_field() -> Any:
    """A `created_at` column filled on insert."""
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def updated_at_field() -> Any:
    """An `updated_at` column filled on insert and refreshed on update."""
    return Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, onupdate=utcnow),
    )


def json_field(*, default_factory: Any = None, nullable: bool = False) -> Any:
    """A JSON column (JSONB on PostgreSQL); nullable ones default to None."""
    if default_factory is None:
        return Field(default=None, sa_column=Column(JSONType, nullable=nullable))
    return Field(default_factory=default_factory, sa_column=Column(JSONType, nullable=nullable))
