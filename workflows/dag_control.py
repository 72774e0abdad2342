"""What people do to a running DagWorkflow: approve or reject a waiting node, resume a suspended
execution, raise the token budget. The workflow's update, validator and signal handlers delegate
here. A node's approval deadline (`approval_timeout_s`) is a durable timer per wait, cancelled
when a person decides first; when it fires, `on_timeout` decides in their place.

An agent node whose agent wants to call an MCP tool that needs approval waits the same way, in
the middle of its run (`ask_tool`): the node shows `waiting_approval` with the call as its
`waiting_reason`, the same approve/reject (and deadline) answer it, and the agent goes on: the
call made, or the model told a person refused it."""

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from contracts import errors
from contracts.dag import ApprovalDecision, BudgetRaise, InputAnswer, NodeState, NodeStatus, ResumeRequest
from contracts.mcp import McpQuestion, McpTool
from contracts.tools import PREVIEW_CHARS
from workflows.dag_events import DagEvents
from workflows.dag_graph import DagGraph

with workflow.unsafe.imports_passed_through():
    from activities.tools.mcp_toolset import Decision, McpGate

MIN_TIMER_S = 0.001
"""A deadline already past when its timer is armed (carried over continue-as-new) fires at once."""


class DagControl:
    """Approvals and resumes over a DagGraph; `wake` makes the workflow's loop look again."""

    def __init__(self, graph: DagGraph, events: DagEvents, *, wake: Callable[[], None]) -> None:
        self._graph = graph
        self._events = events
        self._wake = wake
        self._deadlines: dict[str, asyncio.Task[None]] = {}
        self._tool_waits: dict[str, list[Decision]] = {}
        """Node → where the answer to its agent's pending tool call goes (empty until decided)."""
        self._tool_locks: dict[str, asyncio.Lock] = {}

    # ---------------------------------------------------------------- tool calls inside agents

    def tool_gate(self, node_id: str) -> McpGate:
        """Where a node's MCP calls wait for a person: an agent's call that needs approval, a
        tool's question (MCP elicitation)."""
        return _NodeGate(self, node_id)

    async def ask_tool(self, node_id: str, tool: McpTool, arguments: dict[str, Any]) -> Decision:
        """Hold the agent's call until a person (or the deadline) decides; one call at a time."""
        call = f"{tool.name}({json.dumps(arguments, ensure_ascii=False, default=str)})"
        return await self._wait_for_person(node_id, f"tool call {call}")

    async def ask_question(self, node_id: str, tool: McpTool, question: McpQuestion) -> Decision:
        """Put a tool's question to a person and wait for the answer (`answer`, or approve to
        accept with no fields, reject to decline; a deadline decides by `on_timeout`)."""
        asked = {
            "tool": tool.name,
            "message": question.message,
            "requested_schema": question.requested_schema,
        }
        return await self._wait_for_person(node_id, f"question from {tool.name}: {question.message}", asked)

    async def _wait_for_person(
        self, node_id: str, reason: str, question: dict[str, Any] | None = None
    ) -> Decision:
        lock = self._tool_locks.setdefault(node_id, asyncio.Lock())
        async with lock:
            graph = self._graph
            state = graph.nodes[node_id]
            state.status = NodeStatus.waiting_approval
            state.waiting_reason = reason[:PREVIEW_CHARS]
            state.question = question
            state.decided_by = None
            answer: list[Decision] = []
            self._tool_waits[node_id] = answer
            graph.waiting_approval.add(node_id)
            timeout = graph.specs[node_id].approval_timeout_s
            if timeout is not None:
                state.approval_deadline = workflow.now() + timedelta(seconds=timeout)
                graph.deadlines_due.append(node_id)
                self.arm_deadlines()
            self._events.publish(
                "node_waiting_approval", node_id=node_id, status=state.status, message=state.waiting_reason
            )
            self._wake()
            try:
                await workflow.wait_condition(lambda: bool(answer))
            finally:
                self._tool_waits.pop(node_id, None)
            return answer[0]

    def check_question(self, answer: InputAnswer) -> None:
        """An answer needs a node whose tool asked a question and waits for it."""
        self.check_waiting(ApprovalDecision(node_id=answer.node_id))
        if self._graph.nodes[answer.node_id].question is None:
            raise ApplicationError(
                f"node {answer.node_id!r} waits for approval, not for an answer: approve or reject it",
                type=errors.NODE_NOT_WAITING,
            )

    def answer(self, answer: InputAnswer) -> None:
        """A person's answer to a tool's question."""
        decision = Decision(
            approved=answer.action == "accept",
            action=answer.action,
            content=dict(answer.content),
            comment=answer.action,
        )
        self._answer_tool(answer.node_id, decision, "person")

    def _answer_tool(self, node_id: str, decision: Decision, by: Literal["person", "timeout"]) -> bool:
        """Answer a pending tool call of an agent node; False when the node has none."""
        answer = self._tool_waits.get(node_id)
        if answer is None:
            return False
        state = self._end_wait(node_id, by)
        state.status = NodeStatus.running
        state.question = None
        answer.append(decision)
        if decision.approved:
            self._events.publish(
                "node_approved", node_id=node_id, status=state.status, message=decision.comment
            )
        else:
            self._events.publish(
                "node_rejected", node_id=node_id, status=state.status, message=decision.comment
            )
        self._wake()
        return True

    def check_waiting(self, decision: ApprovalDecision) -> None:
        state = self._graph.nodes.get(decision.node_id)
        if state is None:
            raise ApplicationError(f"unknown node {decision.node_id!r}", type=errors.UNKNOWN_NODE)
        if state.status != NodeStatus.waiting_approval:
            raise ApplicationError(
                f"node {decision.node_id!r} is not waiting for approval (it is {state.status})",
                type=errors.NODE_NOT_WAITING,
            )

    def signal_valid(self, decision: ApprovalDecision, signal: str) -> bool:
        """Signals cannot answer: an invalid one is logged and ignored."""
        try:
            self.check_waiting(decision)
        except ApplicationError as exc:
            workflow.logger.warning("%s ignored: %s", signal, exc.message)
            return False
        return True

    def approve(self, decision: ApprovalDecision, *, by: Literal["person", "timeout"] = "person") -> None:
        graph = self._graph
        node_id = decision.node_id
        if self._answer_tool(
            node_id, Decision(approved=True, comment=decision.comment or "", content={}), by
        ):
            return
        state = self._end_wait(node_id, by)
        graph.approved.add(node_id)
        state.status = NodeStatus.pending
        graph.ready.appendleft(node_id)
        self._events.publish("node_approved", node_id=node_id, status=state.status, message=decision.comment)
        self._wake()

    def reject(self, decision: ApprovalDecision, *, by: Literal["person", "timeout"] = "person") -> None:
        node_id = decision.node_id
        declined = Decision(approved=False, comment=decision.comment or "", action="decline")
        if self._answer_tool(node_id, declined, by):
            return
        state = self._end_wait(node_id, by)
        state.status = NodeStatus.failed
        state.error = f"rejected: {decision.comment}" if decision.comment else "rejected"
        self._events.publish("node_rejected", node_id=node_id, status=state.status, message=decision.comment)
        self._graph.mark_finished(node_id)
        self._wake()

    def _end_wait(self, node_id: str, by: Literal["person", "timeout"]) -> NodeState:
        self._graph.waiting_approval.discard(node_id)
        deadline = self._deadlines.pop(node_id, None)
        if deadline is not None and by == "person":
            deadline.cancel()  # cancels its timer
        state = self._graph.nodes[node_id]
        state.waiting_reason = None
        state.approval_deadline = None
        state.decided_by = by
        return state

    # ---------------------------------------------------------------- approval deadlines

    def arm_deadlines(self) -> None:
        """Start a timer for every node that just began waiting with a deadline."""
        graph = self._graph
        while graph.deadlines_due:
            node_id = graph.deadlines_due.pop()
            deadline = graph.nodes[node_id].approval_deadline
            if deadline is None or graph.nodes[node_id].status != NodeStatus.waiting_approval:
                continue
            self._deadlines[node_id] = asyncio.create_task(self._expire_at(node_id, deadline))

    async def _expire_at(self, node_id: str, deadline: datetime) -> None:
        left = (deadline - workflow.now()).total_seconds()
        await workflow.sleep(max(left, MIN_TIMER_S), summary=f"approval deadline of node {node_id}")
        if self._graph.nodes[node_id].approval_deadline == deadline:  # still this wait
            self.expire(node_id)

    def expire(self, node_id: str) -> None:
        """The deadline passed with nobody deciding: `on_timeout` decides."""
        graph = self._graph
        state = graph.nodes[node_id]
        if state.status != NodeStatus.waiting_approval:
            return
        spec = graph.specs[node_id]
        decision = spec.timeout_decision
        timed_out = f"approval timed out after {spec.approval_timeout_s:g} s"
        self._events.publish(
            "node_approval_timed_out",
            node_id=node_id,
            status=state.status,
            message=f"{timed_out}: {decision}",
        )
        if decision == "approve":
            self.approve(ApprovalDecision(node_id=node_id, comment=timed_out), by="timeout")
        elif decision == "reject":
            self.reject(ApprovalDecision(node_id=node_id, comment=timed_out), by="timeout")
        elif self._answer_tool(node_id, Decision(approved=False, comment=timed_out, fail=True), "timeout"):
            return
        else:
            state = self._end_wait(node_id, "timeout")
            state.status = NodeStatus.failed
            state.error = timed_out
            graph.mark_finished(node_id)
            self._wake()

    # ---------------------------------------------------------------- token budget

    def check_raise(self, request: BudgetRaise) -> None:
        graph = self._graph
        if graph.max_tokens is None:
            raise ApplicationError("this execution has no token budget to raise", type=errors.NO_TOKEN_BUDGET)
        used = graph.usage.total_tokens
        if request.max_tokens_per_run <= used:
            raise ApplicationError(
                f"max_tokens_per_run must be above the {used} tokens this execution has used "
                f"(asked for {request.max_tokens_per_run})",
                type=errors.BUDGET_TOO_LOW,
            )

    def raise_budget(self, request: BudgetRaise) -> None:
        """Apply a validated raise; the workflow's loop lifts a pause at the budget."""
        self._graph.max_tokens = request.max_tokens_per_run
        self._wake()

    def check_resume(self, request: ResumeRequest) -> None:
        graph = self._graph
        if request.node_id not in graph.nodes:
            raise ApplicationError(f"unknown node {request.node_id!r}", type=errors.UNKNOWN_NODE)
        waiting = graph.awaiting_resume
        if not waiting or waiting[0] != request.node_id:
            where = f"on node {waiting[0]!r}" if waiting else "at all"
            raise ApplicationError(
                f"execution is not suspended on node {request.node_id!r} (suspended {where})",
                type=errors.NOT_SUSPENDED_ON_NODE,
            )
        if request.action == "patch":
            node = graph.specs[request.node_id]
            prompt = (request.input or {}).get("prompt")
            if node.agent is not None and not (isinstance(prompt, str) and prompt):
                raise ApplicationError(
                    "patching an agent node needs input {'prompt': '<non-empty text>'}",
                    type=errors.INVALID_PATCH,
                )

    def resume(self, request: ResumeRequest) -> bool:
        """Apply a validated resume; True when no failed node waits any more."""
        graph = self._graph
        node_id = request.node_id
        graph.awaiting_resume.remove(node_id)
        graph.done -= 1  # the failed node is open again
        if request.action == "skip":
            graph.skip(node_id, "skipped on resume")
            graph.skip_dependents(node_id)
        else:
            node = graph.specs[node_id]
            if request.action == "patch" and request.input is not None:
                if node.tool is not None:
                    graph.specs[node_id] = node.model_copy(update={"input": request.input})
                else:
                    graph.specs[node_id] = node.model_copy(update={"prompt": request.input["prompt"]})
            state = graph.nodes[node_id]
            state.status = NodeStatus.pending
            state.error = None
            graph.approved.discard(node_id)
            graph.ready.appendleft(node_id)
        self._wake()
        return not graph.awaiting_resume


class _NodeGate:
    """One node's `McpGate` over the workflow's control."""

    def __init__(self, control: DagControl, node_id: str) -> None:
        self._control = control
        self._node_id = node_id

    async def approve(self, tool: McpTool, arguments: dict[str, Any]) -> Decision:
        return await self._control.ask_tool(self._node_id, tool, arguments)

    async def ask(self, tool: McpTool, question: McpQuestion) -> Decision:
        return await self._control.ask_question(self._node_id, tool, question)
