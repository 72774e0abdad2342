"""`GET /stats`: counts from Postgres (goals, the usage ledger) and Temporal (runs by status)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

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


@dataclass(frozen=True)
class LedgerTotals:
    """Finished runs and the tokens they used, from the usage ledger: one run kind, or summed."""

    runs: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: "LedgerTotals") -> "LedgerTotals":
        return LedgerTotals(
            runs=self.runs + other.runs,
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


@dataclass(frozen=True)
class TokenWindows:
    today: LedgerTotals
    last_7_days: LedgerTotals
    last_7_days_by_kind: dict[str, LedgerTotals]


@dataclass(frozen=True)
class StatsCounts:
    """Plain counts: the response model is the route's (api/routes/stats.py), which no other
    caller answers."""

    goals: dict[str, int]
    runs: dict[str, int]
    tasks: dict[str, int]
    tokens: TokenWindows
    todo_tasks: dict[str, int]
    messages_by_category: dict[str, int]

    @property
    def goals_total(self) -> int:
        return sum(self.goals.values())


async def _totals(session: AsyncSession, since: datetime) -> dict[str, LedgerTotals]:
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
        kind: LedgerTotals(
            runs=n,
            requests=requests or 0,
            input_tokens=inp or 0,
            output_tokens=out or 0,
            total_tokens=total or 0,
        )
        for kind, n, requests, inp, out, total in (await session.execute(query)).all()
    }


async def get_stats(session: AsyncSession, client: Client) -> StatsCounts:
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
    return StatsCounts(
        goals=by_goal_status,
        runs=run_counts,
        tasks=task_counts,
        tokens=TokenWindows(
            today=sum(today.values(), LedgerTotals()),
            last_7_days=sum(week.values(), LedgerTotals()),
            last_7_days_by_kind=week,
        ),
        todo_tasks=await todo_tasks.count_by_status(session),
        messages_by_category=await intake_messages.count_by_category(session),
    )
