"""`GET /stats`: goals, runs and token usage at a glance."""

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SessionDep, TemporalDep
from services import stats as service

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


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


@router.get("")
async def get_stats(session: SessionDep, client: TemporalDep) -> Stats:
    """Goals by status, goal runs by status (Temporal), tokens today and over 7 days."""
    counts = await service.get_stats(session, client)
    return Stats.model_validate(counts, from_attributes=True)  # StatsCounts names its fields as Stats
