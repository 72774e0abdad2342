"""The 202 a waiting request answers when its workflow outlives the wait, and the statuses that
every waiting route declares (so the OpenAPI schema lists them)."""

from typing import Any

from fastapi import status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.errors import error
from core.settings import Settings
from services.waiting import StillRunning


class WorkflowAccepted(BaseModel):
    """Still running after the wait: follow it at `follow_url` (or in the Web UI)."""

    workflow_id: str
    status: str = "running"
    detail: str
    follow_url: str
    web_ui_url: str


WAITING_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": WorkflowAccepted, "description": "still running after WAIT_TIMEOUT_S; follow it"},
    503: error(503, "no worker is there to run it (or Temporal is unavailable); nothing ran"),
    504: error(504),
}


def accepted(still: StillRunning, settings: Settings) -> JSONResponse:
    """202 with the workflow id and where to follow it."""
    body = WorkflowAccepted(
        workflow_id=still.workflow_id,
        detail=f"still running after {still.waited_s:g}s; GET follow_url for its outcome",
        follow_url=f"/api/v1/workflows/{still.workflow_id}",
        web_ui_url=settings.workflow_ui_url(still.workflow_id),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
