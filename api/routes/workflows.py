"""`GET /workflows/{id}`: the outcome of a workflow a waiting request answered 202 for."""

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import SettingsDep, TemporalDep
from services import follow as service
from services.follow import FollowedWorkflow

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])

WorkflowIdPath = Annotated[str, Path(min_length=6, max_length=255, pattern=r"^[A-Za-z0-9:_.-]+$")]


@router.get("/{workflow_id}")
async def get_workflow(
    workflow_id: WorkflowIdPath, client: TemporalDep, settings: SettingsDep
) -> FollowedWorkflow:
    """Status, and the result or failure, of an agent test, task or planner run."""
    return await service.follow(client, settings, workflow_id)
