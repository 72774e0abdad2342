"""What the API, the Web App and the bot answer about a goal run (a GoalWorkflow execution).

Read models only: services build them from Temporal's describe, query and result.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from contracts.goals import GoalRunResult
from contracts.usage import TokenUsage


class RunStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    terminated = "terminated"
    timed_out = "timed_out"


class RunFailure(BaseModel):
    type: str | None
    message: str


class RunSummary(BaseModel):
    id: str
    run_id: str | None
    goal_id: int | None
    status: RunStatus
    started_at: datetime | None
    closed_at: datetime | None
    duration_ms: int | None
    web_ui_url: str


class RunDetail(RunSummary):
    phase: str | None = None
    usage: TokenUsage = TokenUsage()
    result: GoalRunResult | None = None
    failure: RunFailure | None = None
    dag_workflow_id: str | None = None


class RunReport(BaseModel):
    """The last event of `GET /runs/{id}/events`: how the run ended and what it left."""

    status: RunStatus
    summary: str = ""
    artifacts: list[str] = []
    usage: TokenUsage = TokenUsage()
    failure: RunFailure | None = None
