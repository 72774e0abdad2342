"""Stored DAGs: a validated spec, optionally run on a cron schedule (a Temporal Schedule)."""

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from contracts.dag import DagSpec
from core.models.common import created_at_field, json_field, updated_at_field
from core.models.schedule import CronExpr, TimeZoneName


class DagBase(SQLModel):
    name: str = Field(index=True, min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    schedule: CronExpr | None = Field(default=None, max_length=100)
    timezone: TimeZoneName | None = Field(default=None, max_length=64)


class DagCreate(SQLModel):
    """A DAG from an explicit spec; `name`/`description` default to the spec's."""

    spec: DagSpec
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    schedule: CronExpr | None = Field(default=None, max_length=100)
    timezone: TimeZoneName | None = Field(default=None, max_length=64)


class DagUpdate(SQLModel):
    """Every field optional; `"schedule": null` removes the schedule."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    spec: DagSpec | None = None
    schedule: CronExpr | None = Field(default=None, max_length=100)
    timezone: TimeZoneName | None = Field(default=None, max_length=64)


class Dag(DagBase, table=True):
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused (migration 0013)

    id: int | None = Field(default=None, primary_key=True)
    spec: dict[str, Any] = json_field(default_factory=dict)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    def dag_spec(self) -> DagSpec:
        """The stored spec as the typed contract."""
        return DagSpec.model_validate(self.spec)


class DagPublic(DagBase):
    id: int
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime
