"""The DAG spec (SPEC §4) and the types DagWorkflow, the API, the bot and goals share.

Pure Pydantic: safe inside the workflow sandbox. Validation that needs the tool registry or the
agent table takes what it needs as arguments (see `contracts/dag_validation.py`).
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from contracts.usage import TokenUsage

NodeId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]

MAX_NODES = 10_000
MAX_PARALLEL = 256


class RetrySpec(BaseModel):
    max_attempts: int = Field(default=3, ge=1, le=20)
    initial_interval_s: float = Field(default=1.0, gt=0, le=600)
    backoff: float = Field(default=2.0, ge=1, le=10)


class NodeSpec(BaseModel):
    """One step: a tool call (`tool` + `input`) or an agent call (`agent` + `prompt`)."""

    id: NodeId
    tool: str | None = Field(default=None, max_length=100)
    input: dict[str, Any] = {}
    agent: str | None = Field(default=None, max_length=63)
    prompt: str | None = Field(default=None, max_length=100_000)
    depends_on: list[NodeId] = []
    retry: RetrySpec | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=24 * 3600)
    requires_approval: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> "NodeSpec":
        if (self.tool is None) == (self.agent is None):
            raise ValueError(f"node {self.id!r} needs exactly one of 'tool' or 'agent'")
        if self.agent is not None and not self.prompt:
            raise ValueError(f"agent node {self.id!r} needs a 'prompt'")
        return self


OnFailure = Literal["suspend", "fail", "continue"]


class DagSpec(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    max_parallel: int = Field(default=8, ge=1, le=MAX_PARALLEL)
    on_failure: OnFailure = "suspend"
    params: dict[str, Any] = {}
    max_tokens_per_run: int | None = Field(default=None, gt=0)
    nodes: list[NodeSpec] = Field(min_length=1, max_length=MAX_NODES)


class NodeStatus(StrEnum):
    pending = "pending"
    waiting_approval = "waiting_approval"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


class ExecutionStatus(StrEnum):
    running = "running"
    suspended = "suspended"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
