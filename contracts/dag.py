"""The DAG spec (SPEC §4) and the types DagWorkflow, the API, the bot and goals share.

Pure Pydantic: safe inside the workflow sandbox. Validation that needs the tool registry or the
agent table takes what it needs as arguments (see `contracts/dag_validation.py`).
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio.contrib.workflow_streams import WorkflowStreamState

from contracts.agents import AgentSnapshot, LoopCarry, ModelFailure
from contracts.mcp import is_mcp_tool
from contracts.usage import TokenUsage

NodeId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]

MAX_NODES = 10_000
MAX_PARALLEL = 256
MAX_SPEC_BYTES = 1_000_000
MAX_PARAMS_BYTES = 256 * 1024
"""Run params ride in the workflow input next to the spec: well inside Temporal's payload limit."""
"""Compact JSON size of a whole spec; it travels in the workflow input (Temporal caps a payload
at 2 MB), together with params, pinned agents and continue-as-new state."""


def _is_none(value: Any) -> bool:
    return value is None


def _is_empty(value: Any) -> bool:
    return not value


def _is_false(value: Any) -> bool:
    return value is False


class RetrySpec(BaseModel):
    max_attempts: int = Field(default=3, ge=1, le=20)
    initial_interval_s: float = Field(default=1.0, gt=0, le=600)
    backoff: float = Field(default=2.0, ge=1, le=10)


MAX_APPROVAL_TIMEOUT_S = 30 * 24 * 3600
"""An approval deadline is at most 30 days away: long enough for any person, short enough that an
unattended run ends."""
OnApprovalTimeout = Literal["reject", "approve", "fail"]
"""What a passed approval deadline decides: reject the node (as a person would), approve it, or
fail it with "approval timed out after N s"."""


class NodeSpec(BaseModel):
    """One step: a tool call (`tool` + `input`) or an agent call (`agent` + `prompt`)."""

    # Fields at their defaults are left out of the JSON so a 10,000-node spec stays a small payload.
    id: NodeId
    tool: str | None = Field(default=None, max_length=100, exclude_if=_is_none)
    input: dict[str, Any] = Field(default_factory=dict, exclude_if=_is_empty)
    agent: str | None = Field(default=None, max_length=63, exclude_if=_is_none)
    prompt: str | None = Field(default=None, max_length=100_000, exclude_if=_is_none)
    model: str | None = Field(default=None, min_length=1, max_length=200, exclude_if=_is_none)
    """Agent nodes: this model of the agent's provider instead of the pinned version's."""
    temperature: float | None = Field(default=None, ge=0, le=2, exclude_if=_is_none)
    """Agent nodes: this sampling temperature instead of the pinned version's."""
    depends_on: list[NodeId] = Field(default_factory=list, exclude_if=_is_empty)
    retry: RetrySpec | None = Field(default=None, exclude_if=_is_none)
    timeout_s: float | None = Field(default=None, gt=0, le=24 * 3600, exclude_if=_is_none)
    requires_approval: bool = Field(default=False, exclude_if=_is_false)
    approval_timeout_s: float | None = Field(
        default=None, gt=0, le=MAX_APPROVAL_TIMEOUT_S, exclude_if=_is_none
    )
    """`requires_approval` nodes (and MCP tool calls that wait for a person: an MCP tool node, or
    an agent node's calls): stop waiting after this many seconds (a durable timer), and decide by
    `on_timeout`."""
    on_timeout: OnApprovalTimeout | None = Field(default=None, exclude_if=_is_none)
    """What the approval deadline decides; `reject` when a deadline is set and this is not."""

    @model_validator(mode="after")
    def _one_kind(self) -> "NodeSpec":
        if (self.tool is None) == (self.agent is None):
            raise ValueError(f"node {self.id!r} needs exactly one of 'tool' or 'agent'")
        if self.tool is not None and (self.model is not None or self.temperature is not None):
            raise ValueError(f"tool node {self.id!r} cannot have a 'model' or 'temperature'")
        if self.agent is not None and not self.prompt:
            raise ValueError(f"agent node {self.id!r} needs a 'prompt'")
        return self

    @model_validator(mode="after")
    def _approval_deadline_needs_approval(self) -> "NodeSpec":
        if self.approval_timeout_s is None and self.on_timeout is None:
            return self
        may_wait = self.requires_approval or self.agent is not None or is_mcp_tool(self.tool or "")
        if not may_wait:
            raise ValueError(
                f"node {self.id!r}: 'approval_timeout_s' and 'on_timeout' need 'requires_approval': true"
            )
        if self.approval_timeout_s is None:
            raise ValueError(f"node {self.id!r}: 'on_timeout' needs 'approval_timeout_s'")
        return self

    @property
    def timeout_decision(self) -> OnApprovalTimeout:
        """What this node's approval deadline decides."""
        return self.on_timeout or "reject"


OnFailure = Literal["suspend", "fail", "continue"]
OnBudget = Literal["fail", "ask"]


class DagSpec(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    max_parallel: int = Field(default=8, ge=1, le=MAX_PARALLEL)
    on_failure: OnFailure = "suspend"
    params: dict[str, Any] = {}
    max_tokens_per_run: int | None = Field(default=None, gt=0)
    nodes: list[NodeSpec] = Field(min_length=1, max_length=MAX_NODES)
    on_budget: OnBudget = Field(default="fail", exclude_if=lambda v: v == "fail")
    """At `max_tokens_per_run`: `fail` the run, or `ask` (pause before starting further nodes
    until a person raises the budget: `raise_budget`)."""

    @model_validator(mode="after")
    def _ask_needs_a_budget(self) -> "DagSpec":
        if self.on_budget == "ask" and self.max_tokens_per_run is None:
            raise ValueError("on_budget 'ask' needs 'max_tokens_per_run'")
        return self


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


TERMINAL_NODE_STATUSES = frozenset(
    {NodeStatus.succeeded, NodeStatus.failed, NodeStatus.skipped, NodeStatus.cancelled}
)


class NodeOutput(BaseModel):
    """A node's result: the value inline, or a reference to the artifact that holds it."""

    value: Any = None
    artifact: str | None = None
    preview: str = ""
    usage: TokenUsage = Field(default_factory=TokenUsage)


class NodeState(BaseModel):
    """One node as the status query reports it. `attempts` counts how often the workflow started
    the node (resume retries included); Temporal's own activity retries happen inside one attempt."""

    id: str
    status: NodeStatus = NodeStatus.pending
    attempts: int = Field(default=0, exclude_if=_is_empty)
    started_at: datetime | None = Field(default=None, exclude_if=_is_none)
    finished_at: datetime | None = Field(default=None, exclude_if=_is_none)
    output_preview: str = Field(default="", exclude_if=_is_empty)
    output: Any = Field(default=None, exclude_if=_is_none)
    artifact: str | None = Field(default=None, exclude_if=_is_none)
    error: str | None = Field(default=None, exclude_if=_is_none)
    usage: TokenUsage = Field(
        default_factory=TokenUsage, exclude_if=lambda u: u.requests == 0 and u.total_tokens == 0
    )
    answered_by: str | None = Field(default=None, exclude_if=_is_none)
    """Agent nodes: `<provider_id>:<model>` that answered (a fallback's when the version's own failed)."""
    fallback_from: list[ModelFailure] = Field(default_factory=list, exclude_if=_is_empty)
    """Agent nodes: the models that failed for good before the one that answered, in order."""
    waiting_reason: str | None = Field(default=None, exclude_if=_is_none)
    reused: bool = Field(default=False, exclude_if=_is_false)
    approval_deadline: datetime | None = Field(default=None, exclude_if=_is_none)
    """While the node waits for approval: when its `approval_timeout_s` runs out."""
    decided_by: Literal["person", "timeout"] | None = Field(default=None, exclude_if=_is_none)
    """Who decided the node's approval: a person (REST, Telegram, CLI) or its deadline."""
    progress: dict[str, Any] | None = Field(default=None, exclude_if=_is_none)
    """A running MCP tool node: the last progress its server reported (`progress`, `total`,
    `message`), read from its activity's heartbeat when the execution is read."""
    question: dict[str, Any] | None = Field(default=None, exclude_if=_is_none)
    """While an MCP tool asks a person something (`message`, `requested_schema`): answered by
    `POST /dag-executions/{id}/answer` (approve accepts with no fields, reject declines)."""

    def node_output(self) -> NodeOutput:
        """What a later execution needs to reuse this node instead of running it again."""
        return NodeOutput(
            value=self.output, artifact=self.artifact, preview=self.output_preview, usage=self.usage
        )


class DagStatus(BaseModel):
    """The `status` query: live while the execution runs, final once it closed."""

    execution_status: ExecutionStatus
    nodes: list[NodeState]
    done: int
    total: int
    usage: TokenUsage
    suspended_node: str | None = None
    error: str | None = None
    max_tokens_per_run: int | None = None
    """The token budget in force (raised by `raise_budget`), None: no budget."""
    waiting_reason: str | None = None
    """Why a suspended execution starts no further node when no failed node is the reason:
    "token budget reached: used X of Y" (`on_budget: ask`)."""


class DagResult(BaseModel):
    """What a succeeded execution returns. `outputs` holds the inline outputs of the sink nodes
    (no node depends on them), as long as they fit a result payload; everything else is in
    `nodes` and in artifacts."""

    status: ExecutionStatus
    nodes: list[NodeState]
    usage: TokenUsage
    outputs: dict[str, Any] = {}


class ApprovalDecision(BaseModel):
    node_id: str = Field(min_length=1, max_length=64)
    comment: str = Field(default="", max_length=2000)


class InputAnswer(BaseModel):
    """A person's answer to an MCP tool's question (MCP elicitation): `accept` with the fields
    its form asked for, `decline`, or `cancel`."""

    node_id: str = Field(min_length=1, max_length=64)
    action: Literal["accept", "decline", "cancel"] = "accept"
    content: dict[str, str | int | float | bool | list[str] | None] = Field(default_factory=dict)


class ResumeRequest(BaseModel):
    """Un-suspend an execution: retry the failed node, skip it (its dependents are skipped too),
    or patch its input (tool nodes: the new input dict; agent nodes: `{"prompt": ...}`) and retry."""

    node_id: str = Field(min_length=1, max_length=64)
    action: Literal["retry", "skip", "patch"]
    input: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _patch_has_input(self) -> "ResumeRequest":
        if self.action == "patch" and self.input is None:
            raise ValueError("action 'patch' needs an 'input'")
        return self


class NodePatch(BaseModel):
    """What a fork changes in one rerun node; a field left out keeps the origin's value. `input`
    replaces a tool node's whole input; the others apply to agent nodes only."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)
    input: dict[str, Any] | None = None
    agent: str | None = Field(default=None, min_length=1, max_length=63)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)


class ForkRequest(BaseModel):
    """Fork an execution: rerun `from_node` and every node downstream of it with `patch` applied,
    reusing the origin's outputs of every other node that succeeded there."""

    from_node: NodeId
    patch: dict[NodeId, NodePatch] = Field(default_factory=dict, max_length=MAX_NODES)


DagEventKind = Literal[
    "execution_started",
    "execution_suspended",
    "execution_resumed",
    "execution_succeeded",
    "execution_failed",
    "execution_cancelled",
    "continued_as_new",
    "node_waiting_approval",
    "node_approved",
    "node_rejected",
    "node_started",
    "node_succeeded",
    "node_failed",
    "node_skipped",
    "node_cancelled",
    "node_approval_timed_out",
    "execution_budget_reached",
    "execution_budget_raised",
]


class DagEvent(BaseModel):
    """One entry of the execution's event stream (topic "events"). `seq` is the workflow's own
    count of events it published; subscribers should address events by the stream offset."""

    seq: int = 0
    kind: DagEventKind
    node_id: str | None = None
    status: str | None = None
    message: str = ""
    at: datetime


class StoredDagEvent(BaseModel):
    """An event kept outside the stream: `seq` is its stream offset (the SSE id)."""

    seq: int = Field(ge=0)
    event: DagEvent


class ArchiveDagEventsInput(BaseModel):
    """Events about to be truncated from an execution's stream at continue-as-new."""

    workflow_id: str
    events: list[StoredDagEvent]


class FinalStateInput(BaseModel):
    """A closed run's final state (the `status` query's last answer), written where the API reads
    it without asking a worker to replay the run's history."""

    workflow_id: str
    run_id: str
    status: DagStatus


class CarriedNode(BaseModel):
    """A finished node compacted for continue-as-new: short keys, epoch milliseconds."""

    i: str
    s: NodeStatus
    a: int = Field(default=0, exclude_if=_is_empty)
    t0: int | None = Field(default=None, exclude_if=_is_none)
    t1: int | None = Field(default=None, exclude_if=_is_none)
    p: str = Field(default="", exclude_if=_is_empty)
    o: Any = Field(default=None, exclude_if=_is_none)
    r: str | None = Field(default=None, exclude_if=_is_none)
    e: str | None = Field(default=None, exclude_if=_is_none)
    m: str | None = Field(default=None, exclude_if=_is_none)
    fb: list[ModelFailure] | None = Field(default=None, exclude_if=_is_none)
    u: TokenUsage | None = Field(default=None, exclude_if=_is_none)
    ru: bool = Field(default=False, exclude_if=_is_false)
    d: Literal["person", "timeout"] | None = Field(default=None, exclude_if=_is_none)


class PausedNode(BaseModel):
    """A running agent node whose loop paused for continue-as-new: the loop's carry and what its
    state showed, so the next run shows the same attempt and start."""

    loop: LoopCarry
    attempts: int
    started_at: datetime | None = None


class DagCarry(BaseModel):
    """What one run of DagWorkflow hands the next across continue-as-new."""

    nodes: list[CarriedNode] = []
    approved: list[str] = []
    event_seq: int = 0
    runs: int = 1
    started_at: datetime | None = None
    stream: WorkflowStreamState | None = None
    layout: str = ""
    """Empty: `spec.nodes` is the whole spec. Otherwise `spec.nodes` holds only the unfinished
    nodes and this is one letter per node in spec order: `s` (the next of `spec.nodes`), `f` (the
    next of `nodes`) or `F` (the same, and no node depends on it)."""
    time_base_ms: int = 0
    """Carried `t0`/`t1` are milliseconds after this epoch millisecond (0: plain epoch ms)."""
    approval_deadlines: dict[str, int] = Field(default_factory=dict, exclude_if=_is_empty)
    """Epoch ms at which the approval of a node still waiting runs out: the next run keeps it."""
    loops: dict[str, "PausedNode"] = Field(default_factory=dict, exclude_if=_is_empty)
    """Agent nodes paused in the middle of their loop (workflows/agent_runs.py): the next run
    resumes each where it stopped."""


class RunDagInput(BaseModel):
    """Input of DagWorkflow. `agents` pins agent versions by name (None: the workflow pins the
    active versions when it starts); `reuse_outputs` marks nodes succeeded without running them;
    `carry` is continue-as-new state (None on a fresh start)."""

    dag_id: int | None = None
    spec: DagSpec
    params: dict[str, Any] = {}
    agents: dict[str, AgentSnapshot] | None = None
    reuse_outputs: dict[str, NodeOutput] = {}
    carry: DagCarry | None = None
    nodes_per_run: int | None = Field(default=None, ge=1)
    """Continue-as-new after this many node completions in one run even when Temporal does not
    suggest it yet (tests and very chatty DAGs); None: only when suggested."""
    events_per_run: int | None = Field(default=None, ge=1)
    """Continue-as-new once a run's history holds this many events, even in the middle of an
    agent loop, before Temporal suggests it (tests); None: only when suggested."""


MAX_TOKENS_BUDGET = 2**53
"""The largest token budget a raise may set (an integer JSON carries exactly)."""


class BudgetRaise(BaseModel):
    """`raise_budget`: let an execution go on with a larger token budget, which must be above
    what the execution has used so far."""

    max_tokens_per_run: int = Field(gt=0, le=MAX_TOKENS_BUDGET)
    comment: str = Field(default="", max_length=2000)
