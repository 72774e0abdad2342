"""DagWorkflow's scheduling state: every node's state, what is ready, what waits, and the
bookkeeping that turns one node's end into its dependents' start.

Deterministic and O(1) per node event (plus the node's children), so a 10,000-node DAG costs the
same per node as a 10-node one. Across continue-as-new only the unfinished nodes' specs travel;
finished nodes travel compactly (see `DagCarry.layout`).
"""

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow

from contracts import errors
from contracts.dag import (
    TERMINAL_NODE_STATUSES,
    DagCarry,
    DagSpec,
    NodeOutput,
    NodeSpec,
    NodeState,
    NodeStatus,
    OnBudget,
    OnFailure,
    PausedNode,
)
from contracts.usage import TokenUsage
from workflows.dag_events import DagEvents
from workflows.dag_state import children_of, compact, epoch_ms, expand, json_size, topological_order

BROKEN = TERMINAL_NODE_STATUSES - {NodeStatus.succeeded}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
APPROVAL_DEADLINE_PATCH = "approval-deadline"
"""Since this patch a node's `approval_timeout_s` starts a durable timer when it waits."""
BUDGET_ASK_PATCH = "token-budget-ask"
"""Since this patch `on_budget: ask` pauses at the token budget instead of failing the run."""


class DagGraph:
    """Node states and the ready/waiting queues of one run."""

    def __init__(
        self,
        spec: DagSpec,
        carry: DagCarry,
        events: DagEvents,
        *,
        on_failure: OnFailure,
        max_tokens: int | None,
        on_budget: OnBudget = "fail",
    ) -> None:
        self.events = events
        self.specs: dict[str, NodeSpec] = {node.id: node for node in spec.nodes}
        self.children = children_of(spec.nodes)
        self._order = topological_order(spec.nodes, self.children)
        self.nodes: dict[str, NodeState] = {}
        self._carried_sinks: dict[str, bool] = {}
        self._restore(spec, carry)
        self.approved: set[str] = set(carry.approved)
        self.waiting_deps: dict[str, int] = {}
        self.ready: deque[str] = deque()
        self.waiting_approval: set[str] = set()
        self.finished: deque[str] = deque()
        self.awaiting_resume: list[str] = []
        self.fatal: tuple[str, str] | None = None
        self.usage = sum((n.usage for n in self.nodes.values() if not n.reused), TokenUsage())
        self.done = 0
        self.finished_this_run = 0
        self._on_failure = on_failure
        self.max_tokens = max_tokens
        """The token budget in force: the spec's, or what `raise_budget` set."""
        self._on_budget = on_budget
        self._asks: bool | None = None
        self._carried_deadlines = {
            node_id: EPOCH + timedelta(milliseconds=ms) for node_id, ms in carry.approval_deadlines.items()
        }
        self.deadlines_due: list[str] = []
        """Nodes that just started waiting with a deadline: the workflow arms their timers."""
        self.resumes: dict[str, PausedNode] = dict(carry.loops)
        """Agent nodes an earlier run paused in their loop: they go on where they stopped."""
        self.paused: dict[str, PausedNode] = {}
        """Agent nodes this run paused in their loop, for the next run (`carry_out`)."""

    def _restore(self, spec: DagSpec, carry: DagCarry) -> None:
        base = carry.time_base_ms
        if not carry.layout:
            self.nodes = {node.id: NodeState(id=node.id) for node in spec.nodes}
            for carried in carry.nodes:
                self.nodes[carried.i] = expand(carried, base_ms=base)
            return
        fresh = iter(spec.nodes)
        finished = iter(carry.nodes)
        for letter in carry.layout:
            if letter == "s":
                node_id = next(fresh).id
                self.nodes[node_id] = NodeState(id=node_id)
            else:
                state = expand(next(finished), base_ms=base)
                self.nodes[state.id] = state
                self._carried_sinks[state.id] = letter == "F"

    # ---------------------------------------------------------------- starting

    def count_done(self) -> int:
        return sum(1 for n in self.nodes.values() if n.status in TERMINAL_NODE_STATUSES)

    def reuse(self, node_id: str, output: NodeOutput) -> None:
        state = self.nodes[node_id]
        state.status = NodeStatus.succeeded
        state.output = output.value
        state.artifact = output.artifact
        state.output_preview = output.preview
        state.usage = output.usage
        state.reused = True
        self.events.publish("node_succeeded", node_id=node_id, status=state.status, message="reused")

    def init_ready(self) -> None:
        """Count unfinished dependencies and queue what can start, from whatever state we have."""
        self.done = self.count_done()
        for node_id in self._order:
            state = self.nodes[node_id]
            if state.status in TERMINAL_NODE_STATUSES:
                continue
            deps = [self.nodes[d] for d in self.specs[node_id].depends_on]
            broken = next((d for d in deps if d.status in BROKEN), None)
            if broken is not None:
                self.skip(node_id, f"dependency {broken.id!r} {broken.status}")
                continue
            waiting = sum(1 for d in deps if d.status != NodeStatus.succeeded)
            self.waiting_deps[node_id] = waiting
            if waiting == 0:
                self.ready.append(node_id)

    def needs_approval(self, node_id: str) -> bool:
        """Park a node that waits for a person; True if it was parked."""
        if not self.specs[node_id].requires_approval or node_id in self.approved:
            return False
        state = self.nodes[node_id]
        state.status = NodeStatus.waiting_approval
        state.waiting_reason = "approval"
        state.decided_by = None
        self.waiting_approval.add(node_id)
        message = ""
        timeout = self.specs[node_id].approval_timeout_s
        if timeout is not None and workflow.patched(APPROVAL_DEADLINE_PATCH):
            carried = self._carried_deadlines.pop(node_id, None)
            deadline = carried or workflow.now() + timedelta(seconds=timeout)
            state.approval_deadline = deadline
            self.deadlines_due.append(node_id)
            decision = self.specs[node_id].timeout_decision
            message = f"until {deadline.isoformat(timespec='milliseconds')}, then {decision}"
        self.events.publish("node_waiting_approval", node_id=node_id, status=state.status, message=message)
        return True

    def mark_running(self, node_id: str) -> NodeState:
        state = self.nodes[node_id]
        state.status = NodeStatus.running
        state.attempts += 1
        state.started_at = workflow.now()
        state.finished_at = None
        state.error = None
        state.waiting_reason = None
        message = ""
        if (resumed := self.resumes.get(node_id)) is not None:
            state.attempts, state.started_at = resumed.attempts, resumed.started_at or state.started_at
            message = "resumed after continue-as-new"
        self.events.publish("node_started", node_id=node_id, status=state.status, message=message)
        return state

    def pause(self, node_id: str, paused: PausedNode) -> None:
        """A running agent node stopped its loop for continue-as-new: it stays running, and the
        next run resumes it."""
        self.paused[node_id] = paused

    # ---------------------------------------------------------------- finishing

    def mark_finished(self, node_id: str) -> None:
        self.nodes[node_id].finished_at = workflow.now()
        self.finished.append(node_id)

    def process_finished(self) -> None:
        """Apply finished nodes: unblock children, sum usage, apply `on_failure`."""
        while self.finished:
            node_id = self.finished.popleft()
            state = self.nodes[node_id]
            self.finished_this_run += 1
            if state.status in (NodeStatus.succeeded, NodeStatus.failed):
                self.done += 1
            if state.status == NodeStatus.succeeded:
                self._succeeded(node_id, state)
            elif state.status == NodeStatus.failed:
                self.events.publish(
                    "node_failed", node_id=node_id, status=state.status, message=state.error or ""
                )
                self._on_node_failure(node_id)

    def _succeeded(self, node_id: str, state: NodeState) -> None:
        self.usage += state.usage
        self.events.publish(
            "node_succeeded", node_id=node_id, status=state.status, message=state.output_preview
        )
        for child in self.children[node_id]:
            if self.nodes[child].status != NodeStatus.pending:
                continue
            self.waiting_deps[child] -= 1
            if self.waiting_deps[child] == 0:
                self.ready.append(child)
        budget = self.max_tokens
        if budget is not None and self.usage.total_tokens > budget and self.fatal is None and not self.asks():
            self.fatal = (
                errors.TOKEN_BUDGET_EXCEEDED,
                f"token budget exceeded: {self.usage.total_tokens} > {budget} tokens",
            )

    def asks(self) -> bool:
        """Whether the budget asks a person instead of failing (patched: histories from before
        `on_budget` fail the way they did)."""
        if self._asks is None:
            self._asks = self._on_budget == "ask" and workflow.patched(BUDGET_ASK_PATCH)
        return self._asks

    def budget_reached(self) -> bool:
        """An `on_budget: ask` run has used its whole budget: no further node may start."""
        budget = self.max_tokens
        return budget is not None and self.usage.total_tokens >= budget and self.asks()

    def budget_reason(self) -> str:
        return f"token budget reached: used {self.usage.total_tokens} of {self.max_tokens}"

    def _on_node_failure(self, node_id: str) -> None:
        if self._on_failure == "fail":
            if self.fatal is None:
                self.fatal = (errors.DAG_FAILED, f"node {node_id!r} failed: {self.nodes[node_id].error}")
        elif self._on_failure == "continue":
            self.skip_dependents(node_id)
        else:
            self.awaiting_resume.append(node_id)

    def skip(self, node_id: str, reason: str) -> None:
        state = self.nodes[node_id]
        state.status = NodeStatus.skipped
        state.error = reason
        self.done += 1
        self.waiting_deps.pop(node_id, None)
        self.events.publish("node_skipped", node_id=node_id, status=state.status, message=reason)

    def skip_dependents(self, node_id: str) -> None:
        queue = deque([node_id])
        while queue:
            current = queue.popleft()
            for child in self.children.get(current, ()):
                if self.nodes[child].status == NodeStatus.pending:
                    self.skip(child, f"dependency {current!r} {self.nodes[current].status}")
                    queue.append(child)

    def close_unstarted(self, status: NodeStatus, reason: str) -> None:
        for node_id in self.paused:  # a loop paused for continue-as-new ends with the run
            state = self.nodes[node_id]
            state.status, state.error = NodeStatus.cancelled, reason
        self.paused.clear()
        for state in self.nodes.values():
            if state.status in (NodeStatus.pending, NodeStatus.waiting_approval):
                state.status = status
                state.error = reason
                state.waiting_reason = None
                state.approval_deadline = None
        self.ready.clear()
        self.waiting_approval.clear()
        self.done = self.count_done()

    def failed_nodes(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.status == NodeStatus.failed]

    def sink_outputs(self, budget: int) -> dict[str, Any]:
        """Inline outputs of the nodes nothing depends on, up to `budget` bytes of JSON."""
        outputs: dict[str, Any] = {}
        for node_id, state in self.nodes.items():
            if not self._is_sink(node_id):
                continue
            value = state.output if state.artifact is None else f"artifact://{state.artifact}"
            if value is None:
                continue
            budget -= json_size(value)
            if budget < 0:
                break
            outputs[node_id] = value
        return outputs

    def _is_sink(self, node_id: str) -> bool:
        carried = self._carried_sinks.get(node_id)
        if carried is not None and node_id not in self.specs:
            return carried
        return not self.children.get(node_id)

    # ---------------------------------------------------------------- continue-as-new

    def carry_out(self, spec: DagSpec) -> tuple[DagSpec, DagCarry]:
        """The spec of the unfinished nodes and the compact carry of the finished ones."""
        base = min(
            (ms for n in self.nodes.values() if (ms := epoch_ms(n.started_at or n.finished_at)) is not None),
            default=0,
        )
        unfinished: list[NodeSpec] = []
        carried = []
        layout = []
        for node_id, state in self.nodes.items():
            if state.status in TERMINAL_NODE_STATUSES:
                carried.append(compact(state, base_ms=base))
                layout.append("F" if self._is_sink(node_id) else "f")
            else:
                unfinished.append(self.specs[node_id])
                layout.append("s")
        trimmed = spec.model_copy(update={"nodes": unfinished})
        if self.max_tokens != spec.max_tokens_per_run:  # raised: the next run keeps the raise
            trimmed = trimmed.model_copy(update={"max_tokens_per_run": self.max_tokens})
        deadlines: dict[str, int] = {}
        for node_id in sorted(self.waiting_approval):
            deadline = self.nodes[node_id].approval_deadline
            if deadline is not None:  # exact milliseconds: the next run shows the same deadline
                deadlines[node_id] = (deadline - EPOCH) // timedelta(milliseconds=1)
        carry = DagCarry(
            nodes=carried,
            approved=sorted(self.approved),
            layout="".join(layout),
            time_base_ms=base,
            approval_deadlines=deadlines,
            loops=dict(self.paused),
        )
        return trimmed, carry
