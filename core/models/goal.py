"""Goals (what a person wants done, optionally on a cron) and the per-run usage ledger.

Run state lives in Temporal; `RunUsage` is a record written once when a run finishes, so
`GET /stats` can sum tokens by day without asking Temporal for every history.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from contracts.agents import AgentName
from core.models.common import UTCDateTime, created_at_field, json_field, updated_at_field, utcnow
from core.models.schedule import CronExpr, TimeZoneName


class GoalStatus(StrEnum):
    active = "active"
    paused = "paused"
    completed = "completed"
    archived = "archived"


class GoalBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    objective: str = Field(min_length=1, max_length=20_000)
    agent_name: AgentName = Field(default="planner", max_length=63, index=True)
    """The planning agent; the default `planner` is registered on start (services/defaults.py)."""
    schedule: CronExpr | None = Field(default=None, max_length=100)
    timezone: TimeZoneName = Field(default="UTC", max_length=64)
    params: dict[str, Any] = json_field(default_factory=dict)
    max_tokens_per_run: int | None = Field(default=None, gt=0, le=100_000_000)


class GoalCreate(GoalBase):
    status: GoalStatus = GoalStatus.active


class GoalUpdate(SQLModel):
    """Every field optional; `"schedule": null` removes the schedule."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    objective: str | None = Field(default=None, min_length=1, max_length=20_000)
    agent_name: AgentName | None = None
    schedule: CronExpr | None = Field(default=None, max_length=100)
    timezone: TimeZoneName | None = Field(default=None, max_length=64)
    params: dict[str, Any] | None = None
    status: GoalStatus | None = None
    max_tokens_per_run: int | None = Field(default=None, gt=0, le=100_000_000)


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
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
