"""Column helpers shared by the tables."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

JSONType = JSON().with_variant(JSONB(), "postgresql")

MAX_DB_ID = 2**31 - 1
"""Integer primary keys are int32 in PostgreSQL; a larger id must be a 422, not a DataError."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every database.

    PostgreSQL keeps the offset; SQLite drops it and answers naive datetimes, which would make the
    API's timestamps depend on the database. Values are stored as UTC and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """Timezone-aware now; naive datetimes compare wrongly across SQLite and PostgreSQL."""
    return datetime.now(UTC)


def created_at_field() -> Any:
    """A `created_at` column filled on insert."""
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def updated_at_field() -> Any:
    """An `updated_at` column filled on insert and refreshed on update."""
    return Field(
        default_factory=utcnow,
        sa_column=Column(UTCDateTime(), nullable=False, onupdate=utcnow),
    )


def json_field(*, default_factory: Any = None, nullable: bool = False) -> Any:
    """A JSON column (JSONB on PostgreSQL); nullable ones default to None."""
    if default_factory is None:
        return Field(default=None, sa_column=Column(JSONType, nullable=nullable))
    return Field(default_factory=default_factory, sa_column=Column(JSONType, nullable=nullable))


def clean_labels(values: list[str], *, max_items: int, max_chars: int, what: str) -> list[str]:
    """Trimmed, non-empty, unique (first spelling kept), bounded: ValueError naming the bounds."""
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if len(cleaned) > max_items or any(len(v) > max_chars for v in cleaned):
        raise ValueError(f"at most {max_items} {what} of at most {max_chars} characters")
    return cleaned
