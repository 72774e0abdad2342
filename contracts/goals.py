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


class PlanMode(StrEnum):
    """When a goal plans: on every run, or once (its first validated plan is frozen and reused
    until a replan is asked for, or its runs fail `replan_after_failures` times in a row)."""

    every_run = "every_run"
    once = "once"


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
    summarizer_kind: str | None = None
    """The kind of the summarizer's provider (absent in old runs). On `local` (the embedded 135M
    model) the report is built from the step outputs instead: it invented results (workflows/goal.py)."""
    plan: PlanMode = PlanMode.every_run
    """`once`: the run executes the goal's frozen plan when there is one (absent in old runs)."""


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
    plan_version: int | None = None
    """The frozen plan version this run executed or stored (None: planned for this run only)."""
    plan_dag_id: int | None = None
    """The stored DAG of that frozen plan version."""


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


class FrozenPlan(BaseModel):
    """One stored version of a `plan: once` goal's plan: the DAG it runs without planning."""

    goal_id: int
    version: int
    dag_id: int
    spec: DagSpec
    source_workflow_id: str
    """The goal run that planned it (the key that makes storing it idempotent)."""


class StorePlanInput(BaseModel):
    """A run's validated plan, to be frozen as the goal's next plan version."""

    goal_id: int
    workflow_id: str
    spec: DagSpec
    planner_name: str
    planner_version: int


class PlanOutcomeInput(BaseModel):
    """How a run of a frozen plan version ended: failures in a row may retire the version."""

    goal_id: int
    version: int
    workflow_id: str
    succeeded: bool


class PlanOutcome(BaseModel):
    failures: int
    """Failed runs of the version in a row, this one included."""
    retired: bool
    """The version is no longer used: the next run plans anew."""
