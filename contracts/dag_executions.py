"""What the API and the services that start DAG executions (start, resume, fork) answer about
them.

Read models only: services build them from Temporal visibility, `describe` and the status query.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from contracts.dag import ExecutionStatus, NodeState
from contracts.usage import TokenUsage


class ExecutionSummary(BaseModel):
    """One execution as visibility lists it (no per-node state: that needs the query)."""

    id: str
    run_id: str | None
    dag_id: int | None
    status: ExecutionStatus
    workflow_type: str
    started_at: datetime | None
    closed_at: datetime | None
    web_ui_url: str


class ExecutionDetail(BaseModel):
    """`GET /dag-executions/{id}`: the status query joined with what `describe` knows."""

    id: str
    run_id: str | None
    dag_id: int | None
    status: ExecutionStatus
    nodes: list[NodeState]
    done: int
    total: int
    usage: TokenUsage
    suspended_node: str | None = None
    error: str | None = None
    max_tokens_per_run: int | None = None
    """The token budget in force (the DAG's, or a raised one)."""
    waiting_reason: str | None = None
    """Why a suspended execution waits besides a failed node: "token budget reached: used X of Y"."""
    started_at: datetime | None
    closed_at: datetime | None
    web_ui_url: str
    forked_from: str | None = None
    """The execution this one was forked from (`POST /dag-executions/{id}/fork`), from its memo."""
    forked_from_node: str | None = None


class Started(BaseModel):
    id: str
    run_id: str | None
    dag_id: int | None
    status: ExecutionStatus = ExecutionStatus.running
    reused_nodes: list[str] = []
    web_ui_url: str


NodeKind = Literal["agent", "tool", "approval"]


class GraphShape(BaseModel):
    """What the spec says about the drawing: edges (dependency → dependent) and each node's kind."""

    edges: list[tuple[str, str]] = []
    kinds: dict[str, NodeKind] = {}


class ExecutionGraph(BaseModel):
    """An execution as the run page draws it. `edges` is empty when the spec cannot be read."""

    execution: ExecutionDetail
    edges: list[tuple[str, str]]
    kinds: dict[str, NodeKind]
