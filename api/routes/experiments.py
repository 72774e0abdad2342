"""DAG experiments: one DAG across a model matrix, answered as a comparison table."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import errors
from contracts.experiments import MAX_CELLS, CellResult, ExperimentCell
from services import experiments as service

router = APIRouter(prefix="/api/v1", tags=["dags"])


class ExperimentRequest(BaseModel):
    dag_id: int = Field(ge=1, le=2**31 - 1)
    params: dict[str, Any] = {}
    matrix: list[ExperimentCell] = Field(min_length=1, max_length=MAX_CELLS)


class ExperimentResponse(BaseModel):
    id: str
    dag_id: int
    cells: list[CellResult]


@router.post("/dag-experiments", responses=errors(504))
async def run_experiment(
    body: ExperimentRequest, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> ExperimentResponse:
    """Run the DAG once per matrix cell (one parent workflow, child executions) and compare:
    per cell status, duration, tokens and the outputs of the last nodes."""
    workflow_id, result = await service.run_experiment(
        session, client, settings, dag_id=body.dag_id, params=body.params, matrix=body.matrix
    )
    return ExperimentResponse(id=workflow_id, dag_id=result.dag_id, cells=result.cells)
