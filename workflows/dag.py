"""DagWorkflow: runs a validated DagSpec, node by node, as Temporal activities (SPEC §4, §5, §7).

Ready nodes run concurrently up to `max_parallel`. A tool node is one activity named after the
tool (a local activity when the tool is marked `local`); an agent node is a pydantic-ai run on
the pinned agent version (`workflows/dag_nodes.py`). Approvals and resumes are updates with
validators (and signals for the CLI; `workflows/dag_control.py`); events go to a Workflow Stream
on topic "events"; long executions continue-as-new carrying only unfinished specs and compact
finished nodes (`workflows/dag_graph.py`); `workflows/dag_launcher.py` bounds local activities per
workflow task.

Failure semantics:
- A node fails when its activity fails after its retries, its template cannot be resolved, or a
  person rejects it (`reject` on a `requires_approval` node). What happens next is `on_failure`:
  `suspend` (the execution waits for `resume`: retry, skip, or patch), `fail` (running nodes are
  cancelled, unstarted ones skipped, the execution fails), `continue` (dependents are skipped,
  independent nodes go on; the execution still ends failed).
- A retried node that needs approval asks for approval again.
- A node's `approval_timeout_s` bounds its wait with a durable timer; when nobody decided by then,
  `on_timeout` does: `reject` (as a person would), `approve`, or `fail` ("approval timed out after
  N s"); the node's `decided_by` says "timeout" and the stream has `node_approval_timed_out`.
- `max_tokens_per_run` with `on_budget: ask`: once the run has used its budget, no further node
  starts (running ones finish); the execution is suspended with a `waiting_reason` until
  `raise_budget` sets a budget above what was used, or it is cancelled.
- The final failure raises `ApplicationError(type="DagFailed" | "TokenBudgetExceeded")` only after
  every node state is final, so the `status` query answers from the closed workflow too.
"""

import asyncio
import contextlib
from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from contracts import errors
from contracts.dag import (
    TERMINAL_NODE_STATUSES,
    ApprovalDecision,
    BudgetRaise,
    DagCarry,
    DagResult,
    DagStatus,
    ExecutionStatus,
    FinalStateInput,
    InputAnswer,
    NodeStatus,
    ResumeRequest,
    RunDagInput,
)
from contracts.mcp import MCP_RESOLVE_ACTIVITY, McpTool, is_mcp_tool
from contracts.search import DAG_STATUS, RUN_KIND_DAG
from contracts.workflow_names import (
    DAG_ANSWER_UPDATE,
    DAG_APPROVE_SIGNAL,
    DAG_APPROVE_UPDATE,
    DAG_RAISE_BUDGET_SIGNAL,
    DAG_RAISE_BUDGET_UPDATE,
    DAG_REJECT_SIGNAL,
    DAG_REJECT_UPDATE,
    DAG_RESUME_UPDATE,
    DAG_STATUS_QUERY,
    DAG_WORKFLOW,
)
from workflows.agent_runs import provider_failure
from workflows.dag_control import DagControl
from workflows.dag_events import DagEvents, report_progress
from workflows.dag_graph import APPROVAL_DEADLINE_PATCH as APPROVAL_DEADLINE_PATCH
from workflows.dag_graph import BUDGET_ASK_PATCH as BUDGET_ASK_PATCH
from workflows.dag_graph import DagGraph
from workflows.dag_launcher import NodeLauncher
from workflows.dag_nodes import NodeRunner, describe
from workflows.dag_patches import decide_up_front
from workflows.store_options import STORE_RETRY, STORE_TIMEOUT, store_call
from workflows.usage import record_usage

with workflow.unsafe.imports_passed_through():
    from activities.dag_final_state import save_final_state
    from activities.llm import goalflow_agent
    from activities.store import resolve_agent_snapshots

RESULT_OUTPUTS_BUDGET = 256 * 1024
"""Bytes of sink outputs a DagResult may carry inline."""
TASK_BREAK = timedelta(milliseconds=1)
STATUS_ATTRIBUTE_PATCH = "dag-status-search-attribute"
"""Since this patch the execution status is upserted as the `DagStatus` search attribute."""
ARCHIVE_EVENTS_PATCH = "dag-archive-events-before-trim"
"""Since this patch the events a continue-as-new trims are archived by an activity first."""
PIN_LOCAL_PATCH = "dag-pin-agents-local"
"""Since this patch the agent versions are pinned by a local activity (one database read, safe to
repeat): the first agent node starts without a round trip through the task queue."""
FINAL_STATE_PATCH = "dag-save-final-state"
"""Since this patch a run that closes writes its final `status` to the database (a local
activity), so reading a closed execution never makes a worker replay its history."""


@workflow.defn(name=DAG_WORKFLOW)
class DagWorkflow:
    """One execution of a DAG."""

    __pydantic_ai_agents__ = [goalflow_agent]

    @workflow.init
    def __init__(self, params: RunDagInput) -> None:
        carry = params.carry
        self._fresh = carry is None
        self._carry = carry or DagCarry()
        self._stream = WorkflowStream(prior_state=self._carry.stream)
        self._events = DagEvents(self._stream, seq=self._carry.event_seq)
        spec = params.spec
        self._graph = DagGraph(
            spec,
            self._carry,
            self._events,
            on_failure=spec.on_failure,
            max_tokens=spec.max_tokens_per_run,
            on_budget=spec.on_budget,
        )
        self._agents = dict(params.agents or {})
        self._runner = NodeRunner(
            params={**spec.params, **params.params}, agents=self._agents, nodes=self._graph.nodes
        )
        self._control = DagControl(self._graph, self._events, wake=self._wake)
        self._runner.tool_gate = self._control.tool_gate
        self._runner.pause_when = lambda: self._history_due(params)
        self._launcher = NodeLauncher(
            self._graph, self._runner, self._events, max_parallel=spec.max_parallel, wake=self._wake
        )
        self._status = ExecutionStatus.running
        self._error: str | None = None
        self._draining = False
        self._dirty = False
        self._budget_wait = False

    def _wake(self) -> None:
        self._dirty = True

    # ---------------------------------------------------------------- run

    @workflow.run
    async def run(self, params: RunDagInput) -> DagResult:
        """Drive the DAG to a final state; see the module docstring for failure semantics."""
        graph = self._graph
        decide_up_front(  # before any local activity: see workflows/dag_patches.py
            ARCHIVE_EVENTS_PATCH, PIN_LOCAL_PATCH, STATUS_ATTRIBUTE_PATCH, FINAL_STATE_PATCH
        )
        self._upsert_status()
        if self._fresh:
            self._events.publish("execution_started", message=params.spec.name)
            for node_id, output in params.reuse_outputs.items():
                if node_id in graph.nodes:
                    graph.reuse(node_id, output)
        try:
            await self._pin_agents(params)
            await self._pin_mcp_tools()
            graph.init_ready()
            self._report()
            await self._drive(params)
            result = self._finish()
        except asyncio.CancelledError:
            await self._launcher.stop("execution cancelled")
            graph.close_unstarted(NodeStatus.cancelled, "execution cancelled")
            self._set_status(ExecutionStatus.cancelled)
            self._events.publish("execution_cancelled", status=self._status)
            self._report()
            await record_usage(RUN_KIND_DAG, "cancelled", graph.usage)
            await self._save_final_state()
            raise
        except ApplicationError:
            # typed and final: `_fail` closed every node state first
            await record_usage(RUN_KIND_DAG, "failed", graph.usage)
            await self._save_final_state()
            raise
        except Exception as exc:
            # A bug fails the execution (the worker's failure types) but never leaves a node
            # "running" in the state the closed execution answers with.
            message = f"internal error: {type(exc).__name__}: {exc}"[:2000]
            workflow.logger.exception("DagWorkflow failed on a bug")
            await self._launcher.stop(message)
            await record_usage(RUN_KIND_DAG, "failed", graph.usage)
            failure = self._close_failed(errors.INTERNAL_ERROR, message)
            await self._save_final_state()
            raise failure from None
        await record_usage(RUN_KIND_DAG, "succeeded", graph.usage)
        await self._save_final_state()
        return result

    async def _save_final_state(self) -> None:
        """Write the state this run closes with where the API reads it (`storage/final_states.py`).
        Not being able to costs the execution nothing: readers fall back to the `status` query."""
        if not workflow.patched(FINAL_STATE_PATCH):
            return
        info = workflow.info()
        try:
            await workflow.execute_local_activity(
                save_final_state,
                FinalStateInput(workflow_id=info.workflow_id, run_id=info.run_id, status=self.status()),
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary="save final state",
            )
        except ActivityError as exc:
            workflow.logger.warning("final state not saved (reads will query the run): %s", exc)

    async def _pin_agents(self, params: RunDagInput) -> None:
        names = sorted({n.agent for n in self._graph.specs.values() if n.agent} - self._agents.keys())
        if not names:
            return
        if params.agents is not None:
            self._fail(errors.AGENT_NOT_FOUND, f"no pinned version of agent(s): {', '.join(names)}")
        try:
            pinned = await store_call(
                resolve_agent_snapshots,
                names,
                local_patch=PIN_LOCAL_PATCH,
                summary=f"pin agents {', '.join(names)}",
                retry_policy=None,  # as before the patch: Temporal's default
            )
        except FailureError as exc:
            failure = provider_failure(exc)
            kind = failure.type if failure is not None and failure.type else errors.AGENT_NOT_FOUND
            self._fail(kind, describe(exc))
        self._agents.update(pinned)

    async def _pin_mcp_tools(self) -> None:
        """The MCP tools of the tool nodes still to run, as their servers list them now (a tool a
        server stopped listing fails the run here, readably). A tool that may destroy makes its
        node wait for a person first, as `requires_approval` does (its server's `approval`).
        Runs only for DAGs with MCP tool nodes: histories without them replay unchanged."""
        graph = self._graph
        nodes = {
            node_id: spec.tool
            for node_id, spec in graph.specs.items()
            if spec.tool is not None
            and is_mcp_tool(spec.tool)
            and graph.nodes[node_id].status not in TERMINAL_NODE_STATUSES
        }
        if not nodes:
            return
        names = sorted(set(nodes.values()))
        try:
            pinned = await workflow.execute_local_activity(
                MCP_RESOLVE_ACTIVITY,
                names,
                result_type=dict[str, McpTool],
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary=f"pin MCP tools {', '.join(names)}"[:200],
            )
        except FailureError as exc:
            self._fail(errors.MCP_TOOL_UNAVAILABLE, describe(exc))
        self._runner.mcp_tools.update(pinned)
        for node_id, tool in nodes.items():
            if pinned[tool].needs_approval and not graph.specs[node_id].requires_approval:
                graph.specs[node_id] = graph.specs[node_id].model_copy(update={"requires_approval": True})

    def _fail(self, kind: str, message: str) -> NoReturn:
        """Close every unstarted node, record the typed error and raise it (final, no retry)."""
        raise self._close_failed(kind, message)

    def _close_failed(self, kind: str, message: str) -> ApplicationError:
        """Close every unstarted node and record the failure; answers the typed error to raise."""
        self._graph.close_unstarted(NodeStatus.skipped, message)
        self._set_status(ExecutionStatus.failed)
        self._error = message
        self._events.publish("execution_failed", status=self._status, message=message)
        self._report()
        return ApplicationError(message, type=kind, non_retryable=True)

    async def _drive(self, params: RunDagInput) -> None:
        graph = self._graph
        while True:
            graph.process_finished()
            if graph.fatal is not None:
                await self._launcher.stop(graph.fatal[1])
                self._fail(*graph.fatal)
            if graph.awaiting_resume and self._status != ExecutionStatus.suspended:
                self._set_status(ExecutionStatus.suspended)
                node_id = graph.awaiting_resume[0]
                message = graph.nodes[node_id].error or ""
                self._events.publish(
                    "execution_suspended", node_id=node_id, status=self._status, message=message
                )
            self._hold_at_budget()
            self._report()
            if not (
                self._launcher.tasks
                or graph.ready
                or graph.awaiting_resume
                or graph.waiting_approval
                or graph.paused
            ):
                return
            if self._continue_as_new_due(params):
                self._draining = True
                if not self._launcher.tasks and not graph.awaiting_resume:
                    await self._continue_as_new(params)
            if self._status == ExecutionStatus.running and not self._draining:
                self._launcher.launch()
            self._control.arm_deadlines()
            if self._status == ExecutionStatus.running and not self._draining and self._launcher.break_due():
                # Close this workflow task: its local activities are done, more are ready.
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._dirty, timeout=TASK_BREAK)
            else:
                await workflow.wait_condition(lambda: self._dirty)
            self._dirty = False

    def _continue_as_new_due(self, params: RunDagInput) -> bool:
        if self._graph.paused:
            return True  # an agent loop stopped for it: only the next run resumes it
        if self._history_due(params):
            return self._graph.done + len(self._launcher.tasks) < len(self._graph.nodes)
        return False

    def _history_due(self, params: RunDagInput) -> bool:
        """Whether this run has done enough to hand over to a new one (Temporal suggests it, or a
        test's `nodes_per_run` / `events_per_run` is reached); running agent loops stop at their
        next turn when it is."""
        if self._budget_wait:
            return False  # one pause, one prompt: the run continues as new after the raise
        info = workflow.info()
        nodes, events = params.nodes_per_run, params.events_per_run
        return (
            (nodes is not None and self._graph.finished_this_run >= nodes)
            or (events is not None and info.get_current_history_length() >= events)
            or info.is_continue_as_new_suggested()
        )

    def _hold_at_budget(self) -> None:
        """`on_budget: ask`: pause before a further node would start past the budget."""
        graph = self._graph
        if self._budget_wait or not graph.ready or not graph.budget_reached():
            return
        self._budget_wait = True
        self._set_status(ExecutionStatus.suspended)
        self._events.publish("execution_budget_reached", status=self._status, message=graph.budget_reason())

    # ---------------------------------------------------------------- nodes

    def _finish(self) -> DagResult:
        graph = self._graph
        failed = graph.failed_nodes()
        if failed:
            self._fail(errors.DAG_FAILED, f"node(s) failed: {', '.join(failed)}")
        self._set_status(ExecutionStatus.succeeded)
        self._events.publish("execution_succeeded", status=self._status)
        self._report()
        nodes = [n.model_copy(update={"output": None}) for n in graph.nodes.values()]
        outputs = graph.sink_outputs(RESULT_OUTPUTS_BUDGET)
        return DagResult(status=self._status, nodes=nodes, usage=graph.usage, outputs=outputs)

    async def _continue_as_new(self, params: RunDagInput) -> None:
        self._events.publish("continued_as_new", message=f"run {self._carry.runs + 1}")
        if workflow.patched(ARCHIVE_EVENTS_PATCH):
            await self._events.archive_and_trim()
        else:
            self._events.trim_for_carry()
        spec, carry = self._graph.carry_out(params.spec)
        carry.event_seq = self._events.seq
        carry.runs = self._carry.runs + 1
        carry.started_at = self._carry.started_at
        following = params.model_copy(
            update={"spec": spec, "agents": self._agents, "reuse_outputs": {}, "carry": carry}
        )
        await self._stream.continue_as_new(
            lambda state: [following.model_copy(update={"carry": carry.model_copy(update={"stream": state})})]
        )

    def _set_status(self, status: ExecutionStatus) -> None:
        changed = status != self._status
        self._status = status
        if changed:
            self._upsert_status()

    def _upsert_status(self) -> None:
        """Keep `DagStatus` in visibility equal to the status query, so lists filter in one query."""
        if workflow.patched(STATUS_ATTRIBUTE_PATCH):
            workflow.upsert_search_attributes([DAG_STATUS.value_set(self._status.value)])

    def _report(self) -> None:
        report_progress(self._graph.done, len(self._graph.nodes), self._status)

    # ---------------------------------------------------------------- queries, updates, signals

    @workflow.query(name=DAG_STATUS_QUERY)
    def status(self) -> DagStatus:
        """Live state while running; the final state once closed (used to resume with reuse)."""
        graph = self._graph
        return DagStatus(
            execution_status=self._status,
            nodes=list(graph.nodes.values()),
            done=graph.done,
            total=len(graph.nodes),
            usage=graph.usage,
            suspended_node=graph.awaiting_resume[0] if graph.awaiting_resume else None,
            error=self._error,
            max_tokens_per_run=graph.max_tokens,
            waiting_reason=graph.budget_reason() if self._budget_wait else None,
        )

    @workflow.update(name=DAG_APPROVE_UPDATE)
    def approve(self, decision: ApprovalDecision) -> None:
        """Let a node that waits for approval run."""
        self._control.approve(decision)

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        self._control.check_waiting(decision)

    @workflow.update(name=DAG_ANSWER_UPDATE)
    def answer(self, answer: InputAnswer) -> None:
        """Answer the question an MCP tool of a node asks a person (MCP elicitation)."""
        self._control.answer(answer)

    @answer.validator
    def _validate_answer(self, answer: InputAnswer) -> None:
        self._control.check_question(answer)

    @workflow.update(name=DAG_REJECT_UPDATE)
    def reject(self, decision: ApprovalDecision) -> None:
        """Refuse a node that waits for approval: it fails, and `on_failure` decides what follows."""
        self._control.reject(decision)

    @reject.validator
    def _validate_reject(self, decision: ApprovalDecision) -> None:
        self._control.check_waiting(decision)

    @workflow.signal(name=DAG_APPROVE_SIGNAL)
    def approve_signal(self, decision: ApprovalDecision) -> None:
        """`approve` for `temporal workflow signal`; an invalid one is logged and ignored."""
        if self._control.signal_valid(decision, "approve_signal"):
            self._control.approve(decision)

    @workflow.signal(name=DAG_REJECT_SIGNAL)
    def reject_signal(self, decision: ApprovalDecision) -> None:
        """`reject` for `temporal workflow signal`; an invalid one is logged and ignored."""
        if self._control.signal_valid(decision, "reject_signal"):
            self._control.reject(decision)

    @workflow.update(name=DAG_RESUME_UPDATE)
    def resume(self, request: ResumeRequest) -> None:
        """Un-suspend: retry the failed node, skip it (and its dependents), or patch and retry it."""
        if self._control.resume(request) and not self._budget_wait:
            self._set_status(ExecutionStatus.running)
        self._events.publish(
            "execution_resumed", node_id=request.node_id, status=self._status, message=request.action
        )

    @resume.validator
    def _validate_resume(self, request: ResumeRequest) -> None:
        self._control.check_resume(request)

    @workflow.update(name=DAG_RAISE_BUDGET_UPDATE)
    def raise_budget(self, request: BudgetRaise) -> None:
        """Set a larger token budget; an execution paused at its budget goes on."""
        self._raise_budget(request)

    @raise_budget.validator
    def _validate_raise_budget(self, request: BudgetRaise) -> None:
        self._control.check_raise(request)

    @workflow.signal(name=DAG_RAISE_BUDGET_SIGNAL)
    def raise_budget_signal(self, request: BudgetRaise) -> None:
        """`raise_budget` for `temporal workflow signal`; an invalid one is logged and ignored."""
        try:
            self._control.check_raise(request)
        except ApplicationError as exc:
            workflow.logger.warning("raise_budget_signal ignored: %s", exc.message)
            return
        self._raise_budget(request)

    def _raise_budget(self, request: BudgetRaise) -> None:
        self._control.raise_budget(request)
        if self._budget_wait and not self._graph.budget_reached():
            self._budget_wait = False
            if not self._graph.awaiting_resume:
                self._set_status(ExecutionStatus.running)
        message = f"token budget raised to {request.max_tokens_per_run}"
        self._events.publish(
            "execution_budget_raised",
            status=self._status,
            message=f"{message}: {request.comment}" if request.comment else message,
        )
