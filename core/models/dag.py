"""Stored DAGs: a validated spec, optionally run on a cron schedule (a Temporal Schedule)."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from contracts.dag import DagSpec
from core.models.common import created_at_field, json_field, updated_at_field


def _check_cron(value: str | None) -> str | None:
    if value is None:
        return None
    from croniter import croniter

    value = value.strip()
    if not croniter.is_valid(value) or len(value.split()) != 5:
        raise ValueError(f"{value!r} is not a 5-field cron expression")
    return value


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class DagBase(SQLModel):
    name: str = Field(index=True, min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    schedule: str | None = Field(default=None, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return _check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _check_timezone(value)


class DagCreate(SQLModel):
    """A DAG from an explicit spec; `name`/`description` default to the spec's."""

    spec: DagSpec
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    schedule: str | None = Field(default=None, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return _check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _check_timezone(value)


class DagUpdate(SQLModel):
    """Every field optional; `"schedule": null` removes the schedule."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    spec: DagSpec | None = None
    schedule: str | None = Field(default=None, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return _check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _check_timezone(value)


class Dag(DagBase, table=True):
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
