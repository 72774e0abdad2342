"""Types GoalWorkflow, its activities and the runs API share.

Pure Pydantic: safe inside the workflow sandbox. New fields get defaults so old histories decode.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel

from contracts.agents import AgentSnapshot
from contracts.dag import DagSpec
from contracts.usage import TokenUsage

RUN_KIND_GOAL = "goal"
GOAL_NOT_FOUND = "GoalNotFound"
GOAL_NOT_RUNNABLE = "GoalNotRunnable"

SUMMARIZER_AGENT = "summarizer"
"""The default agent (services/defaults registers it) that writes every goal run's report."""

SUMMARY_OUTPUT_CHARS = 4000
"""Each node's output is cut to this many characters in the summary prompt."""


class GoalRunInput(BaseModel):
    """GoalWorkflow input: only the id; the goal is read when the run starts, so a schedule's
    fixed argument always runs the goal as it is now."""

    goal_id: int
    trigger: Literal["manual", "schedule"] = "manual"


class GoalSnapshot(BaseModel):
    """The goal as it was when the run started, with its agent version pinned (it plans) and the
    active `summarizer` version pinned too (it writes the report; None when there is none)."""

    id: int
    title: str
    objective: str
    params: dict[str, Any] = {}
    max_tokens_per_run: int | None = None
    agent: AgentSnapshot
    summarizer: AgentSnapshot | None = None


class StepStatus(StrEnum):
    pending = "pending"
    running = "running"
    waiting_approval = "waiting_approval"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


class GoalStep(BaseModel):
    """One line of a run's progress: the plan, a DAG node, or the summary."""

    id: str
    kind: Literal["plan", "node", "summary"]
    status: StepStatus = StepStatus.pending
    detail: str = ""
    usage: TokenUsage = TokenUsage()
    artifact: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class GoalProgress(BaseModel):
    """The `steps` query: live while the run works, the same shape the result carries."""

    goal_id: int
    phase: Literal["starting", "planning", "running", "summarising", "finished", "failed"]
    steps: list[GoalStep] = []
    usage: TokenUsage = TokenUsage()
    dag_workflow_id: str | None = None
    error: str | None = None


class GoalRunResult(BaseModel):
    goal_id: int
    title: str
    agent_name: str
    agent_version: int
    plan: DagSpec
    steps: list[GoalStep]
    usage: TokenUsage
    artifacts: list[str] = []
    summary: str = ""
    dag_workflow_id: str
    summary_agent_name: str | None = None
    """Who wrote the summary (None in runs from before the summarizer wrote it: the goal's agent)."""
    summary_agent_version: int | None = None


class SaveReportInput(BaseModel):
    goal_id: int
    workflow_id: str
    title: str
    content: str


class RecordUsageInput(BaseModel):
    """A finished run's usage, written once to the ledger that `GET /stats` sums."""

    workflow_id: str
    run_kind: str
    status: Literal["succeeded", "failed", "cancelled"]
    usage: TokenUsage
    goal_id: int | None = None
    agent_name: str | None = None
