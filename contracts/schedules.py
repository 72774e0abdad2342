"""What is known about a Temporal Schedule (a goal's or a DAG's cron), as services answer it.

Read models only: services/schedules.py builds them from a schedule's description.
"""

from datetime import datetime

from pydantic import BaseModel


class RecentAction(BaseModel):
    workflow_id: str
    scheduled_at: datetime
    started_at: datetime


class ScheduleInfo(BaseModel):
    """What a person needs to know about one schedule."""

    id: str
    cron: str | None
    timezone: str | None
    paused: bool
    note: str | None = None
    workflow_type: str | None = None
    next_runs: list[datetime] = []
    recent_actions: list[RecentAction] = []
    num_actions: int = 0
