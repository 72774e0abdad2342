"""Goals (what a person wants done, optionally on a cron), their frozen plans, and the per-run
usage ledger.

Run state lives in Temporal; `RunUsage` is a record written once when a run finishes, so
`GET /stats` can sum tokens by day without asking Temporal for every history. `GoalPlan` rows
are the versions of a `plan: once` goal's frozen plan (see storage/goal_plans.py).
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from contracts.agents import AgentName
from contracts.goals import PlanMode
from core.models.common import UTCDateTime, created_at_field, json_field, updated_at_field, utcnow
from core.models.schedule import CronExpr, TimeZoneName


class GoalStatus(StrEnum):
    active = "active"
    paused = "paused"
    completed = "completed"
    archived = "archived"


MAX_REPLAN_AFTER_FAILURES = 1000


class GoalBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    objective: str = Field(min_length=1, max_length=20_000)
    agent_name: AgentName = Field(default="planner", max_length=63, index=True)
    """The planning agent; the default `planner` is registered on start (services/defaults.py)."""
    schedule: CronExpr | None = Field(default=None, max_length=100)
    timezone: TimeZoneName = Field(default="UTC", max_length=64)
    params: dict[str, Any] = json_field(default_factory=dict)
    max_tokens_per_run: int | None = Field(default=None, gt=0, le=100_000_000)
    plan: PlanMode = Field(default=PlanMode.every_run, sa_type=String(16))
    """`once`: the first validated plan is frozen and later runs execute it without planning."""
    replan_after_failures: int | None = Field(default=None, ge=1, le=MAX_REPLAN_AFTER_FAILURES)
    """With `plan: once`: plan anew after this many failed runs of the frozen plan in a row."""


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
    plan: PlanMode | None = None
    replan_after_failures: int | None = Field(default=None, ge=1, le=MAX_REPLAN_AFTER_FAILURES)


class Goal(GoalBase, table=True):
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused (migration 0013)

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
    plan_version: int | None = None
    """The frozen plan in use (`plan: once`); None while the next run is to plan anew."""
    plan_dag_id: int | None = None
    """The stored DAG (`GET /dags/{id}`) that version runs."""
    plan_failures: int = 0
    """Failed runs of that version in a row (`replan_after_failures` retires it)."""


class GoalPlan(SQLModel, table=True):
    """One version of a goal's frozen plan: the stored DAG its runs execute without planning.

    The plan in use is the goal's newest version that is not retired and whose DAG still exists;
    a replan (on demand, after failures in a row, or when the objective, planner or plan mode
    changes) retires it, so the next run plans and stores the next version.
    """

    __tablename__ = "goal_plan"
    __table_args__ = (UniqueConstraint("goal_id", "version", name="uq_goal_plan_version"),)

    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(
        sa_column=Column(Integer, ForeignKey("goal.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    version: int
    dag_id: int = Field(
        sa_column=Column(Integer, ForeignKey("dag.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    source_workflow_id: str = Field(max_length=255, unique=True)
    """The goal run that planned it; storing that run's plan again finds this row."""
    planner_name: str = Field(max_length=63)
    planner_version: int
    failures: int = 0
    """Failed runs of this version in a row (recounted from `goal_plan_run` on every outcome)."""
    retired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    retired_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()


class GoalPlanRun(SQLModel, table=True):
    """How one run of a frozen plan version ended; one row per run, so counting it twice (a
    retried activity) changes nothing, and "failures in a row" is recounted from these rows."""

    __tablename__ = "goal_plan_run"

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(
        sa_column=Column(Integer, ForeignKey("goal_plan.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    workflow_id: str = Field(max_length=255, unique=True)
    succeeded: bool
    finished_at: datetime = created_at_field()


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
