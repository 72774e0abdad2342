"""Goals (what a person wants done, optionally on a cron) and the per-run usage ledger.

Run state lives in Temporal; `RunUsage` is a record written once when a run finishes, so
`GET /stats` can sum tokens by day without asking Temporal for every history.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import field_validator
from sqlalchemy import Column, DateTime, String
from sqlmodel import Field, SQLModel

from core.models.agent import AgentName
from core.models.common import created_at_field, json_field, updated_at_field, utcnow

CRON_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"})


class GoalStatus(StrEnum):
    active = "active"
    paused = "paused"
    completed = "completed"
    archived = "archived"


def check_cron(value: str | None) -> str | None:
    """A standard 5-field cron (or an @daily-style descriptor) that Temporal also accepts."""
    if value is None:
        return None
    value = " ".join(value.split())
    if value in CRON_DESCRIPTORS:
        return value
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a 5-field cron expression")
    return value


def check_timezone(value: str | None) -> str | None:
    """An IANA time zone name the server and zoneinfo both know."""
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class GoalBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    objective: str = Field(min_length=1, max_length=20_000)
    agent_name: AgentName = Field(max_length=63, index=True)
    schedule: str | None = Field(default=None, max_length=100)
    timezone: str = Field(default="UTC", max_length=64)
    params: dict[str, Any] = json_field(default_factory=dict)
    max_tokens_per_run: int | None = Field(default=None, gt=0, le=100_000_000)


class GoalCreate(GoalBase):
    status: GoalStatus = GoalStatus.active

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return check_timezone(value)


class GoalUpdate(SQLModel):
    """Every field optional; `"schedule": null` removes the schedule."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    objective: str | None = Field(default=None, min_length=1, max_length=20_000)
    agent_name: AgentName | None = None
    schedule: str | None = Field(default=None, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)
    params: dict[str, Any] | None = None
    status: GoalStatus | None = None
    max_tokens_per_run: int | None = Field(default=None, gt=0, le=100_000_000)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return check_timezone(value)


class Goal(GoalBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    status: GoalStatus = Field(default=GoalStatus.active, sa_type=String(16), index=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    @property
    def schedule_id(self) -> str | None:
        """The Temporal Schedule id, when the goal has a cron."""
        return f"goal-{self.id}" if self.schedule else None


class GoalPublic(GoalBase):
    id: int
    status: GoalStatus
    schedule_id: str | None
    created_at: datetime
    updated_at: datetime


class RunUsage(SQLModel, table=True):
    """One finished run's token usage (goal, task, ...), keyed by its workflow id."""

    __tablename__ = "run_usage"

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(max_length=255, unique=True)
    run_kind: str = Field(max_length=32, index=True)
    goal_id: int | None = Field(default=None, index=True)
    agent_name: str | None = Field(default=None, max_length=63)
    status: str = Field(max_length=16)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    finished_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
