"""`GET /stats`: goals, runs and token usage at a glance."""

from fastapi import APIRouter

from api.deps import SessionDep, TemporalDep
from services import stats as service
from services.stats import Stats

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


@router.get("")
async def get_stats(session: SessionDep, client: TemporalDep) -> Stats:
    """Goals by status, goal runs by status (Temporal), tokens today and over 7 days."""
    return await service.get_stats(session, client)
