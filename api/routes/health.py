"""Liveness and readiness: what is up, and which part is not."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import SettingsDep
from services.health import readiness

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"description": "a named part is down"}})
async def ready(request: Request, settings: SettingsDep) -> JSONResponse:
    """Readiness: database, Temporal, a worker polling the task queue, providers."""
    report: dict[str, Any] = await readiness(request.app, settings)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)
