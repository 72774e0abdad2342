"""DAG experiments: one DAG run across a matrix of models, compared side by side."""

from typing import Any

from pydantic import BaseModel, Field

from contracts.dag import DagSpec, ExecutionStatus
from contracts.usage import TokenUsage

MAX_CELLS = 20


class ExperimentCell(BaseModel):
    """One column of the comparison: every agent node of the DAG runs on this model."""

    provider_id: int = Field(ge=1)
    model: str = Field(min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)


class ExperimentInput(BaseModel):
    dag_id: int
    spec: DagSpec
    params: dict[str, Any] = {}
    matrix: list[ExperimentCell] = Field(min_length=1, max_length=MAX_CELLS)


class CellResult(BaseModel):
    index: int
    cell: ExperimentCell
    execution_id: str
    status: ExecutionStatus
    duration_ms: int
    usage: TokenUsage
    total_tokens: int
    outputs: dict[str, Any] = {}
    error: str | None = None


class ExperimentResult(BaseModel):
    dag_id: int
    cells: list[CellResult]
