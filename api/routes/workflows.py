"""`GET /workflows/{id}`: the outcome of a workflow a waiting request answered 202 for."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from api.deps import SettingsDep, TemporalDep
from services import follow as service
from services.follow import FollowStatus

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])

WorkflowIdPath = Annotated[str, Path(min_length=6, max_length=255, pattern=r"^[A-Za-z0-9:_.-]+$")]


class FollowedWorkflow(BaseModel):
    """Where a handed-out workflow stands; `result` once it succeeded, `error` once it failed."""

    workflow_id: str
    status: FollowStatus
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    web_ui_url: str


@router.get("/{workflow_id}")
async def get_workflow(
    workflow_id: WorkflowIdPath, client: TemporalDep, settings: SettingsDep
) -> FollowedWorkflow:
    """Status, and the result or failure, of an agent test, task or planner run."""
    followed = await service.follow(client, settings, workflow_id)
    return FollowedWorkflow.model_validate(followed, from_attributes=True)
