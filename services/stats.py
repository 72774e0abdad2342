"""`GET /stats`: counts from Postgres (goals, the usage ledger) and Temporal (runs by status)."""

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from contracts.agent_task import RUN_KIND_TASK
from core.models import RunUsage
from core.models.common import utcnow
from services import goals, runs, todo_tasks
from services import messages as intake_messages
from services.temporal_errors import rpc_error


class TokenTotals(BaseModel):
    runs: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class TokenStats(BaseModel):
    today: TokenTotals
    last_7_days: TokenTotals
    last_7_days_by_kind: dict[str, TokenTotals]


class Stats(BaseModel):
    goals: dict[str, int]
    goals_total: int
    runs: dict[str, int]
    tasks: dict[str, int]
    tokens: TokenStats
    todo_tasks: dict[str, int] = {}
    """Tasks people track (`/tasks`) by status; `tasks` counts agent tasks (`POST /task`)."""
    messages_by_category: dict[str, int] = {}
    """Chat messages by category (`unclassified`: pending or failed)."""


async def _totals(session: AsyncSession, since: datetime) -> dict[str, TokenTotals]:
    query = (
        select(
            col(RunUsage.run_kind),
            func.count(),
            func.sum(RunUsage.requests),
            func.sum(RunUsage.input_tokens),
            func.sum(RunUsage.output_tokens),
            func.sum(RunUsage.total_tokens),
        )
        .where(col(RunUsage.finished_at) >= since)
        .group_by(RunUsage.run_kind)
    )
    return {
        kind: TokenTotals(
            runs=n,
            requests=requests or 0,
            input_tokens=inp or 0,
            output_tokens=out or 0,
            total_tokens=total or 0,
        )
        for kind, n, requests, inp, out, total in (await session.execute(query)).all()
    }


def _sum(parts: dict[str, TokenTotals]) -> TokenTotals:
    total = TokenTotals()
    for part in parts.values():
        for field in TokenTotals.model_fields:
            setattr(total, field, getattr(total, field) + getattr(part, field))
    return total


async def get_stats(session: AsyncSession, client: Client) -> Stats:
    """Goals by status, goal runs and agent tasks (`POST /task`) by status, and tokens used
    today (UTC) and in the last 7 days."""
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    by_goal_status = await goals.count_by_status(session)
    today = await _totals(session, midnight)
    week = await _totals(session, now - timedelta(days=7))
    try:
        run_counts = await runs.count_by_status(client)
        task_counts = await runs.count_by_status(client, RUN_KIND_TASK)
    except RPCError as exc:
        raise rpc_error(exc, what="run counts") from None
    return Stats(
        goals=by_goal_status,
        goals_total=sum(by_goal_status.values()),
        runs=run_counts,
        tasks=task_counts,
        tokens=TokenStats(today=_sum(today), last_7_days=_sum(week), last_7_days_by_kind=week),
        todo_tasks=await todo_tasks.count_by_status(session),
        messages_by_category=await intake_messages.count_by_category(session),
    )
