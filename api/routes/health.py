"""Liveness and readiness: what is up, and which part is not."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client

from api.deps import SettingsDep, get_temporal
from services.health import readiness

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"description": "a required part is down (named in `failing`)"}})
async def ready(request: Request, settings: SettingsDep) -> JSONResponse:
    """Readiness: database, Temporal and a worker polling the task queue decide it (503 naming the
    failing part); providers, schedules and the local model are reported and mark it "degraded"."""

    async def temporal() -> Client:
        return await get_temporal(request, settings)

    report: dict[str, Any] = await readiness(settings, temporal)
    return JSONResponse(report, status_code=503 if report["failing"] else 200)
