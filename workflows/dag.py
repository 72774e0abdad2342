"""DagWorkflow: runs a validated DagSpec, node by node, as Temporal activities (SPEC §4, §5, §7).

Ready nodes run concurrently up to `max_parallel`. A tool node is one activity named after the
tool (a local activity when the tool is marked `local`: pure, millisecond computations that would
otherwise pay a full activity-task round trip through the server); an agent node is a pydantic-ai
run on the pinned agent version. Approvals and resumes are updates with validators (and signals for
the CLI); events go to a Workflow Stream on topic "events"; long executions continue-as-new with
finished nodes carried compactly.

Failure semantics:
- A node fails when its activity fails after its retries, its template cannot be resolved, or a
  person rejects it (`reject` on a `requires_approval` node). What happens next is `on_failure`:
  `suspend` (the execution waits for `resume`: retry, skip, or patch), `fail` (running nodes are
  cancelled, unstarted ones skipped, the execution fails), `continue` (dependents are skipped,
  independent nodes go on; the execution still ends failed).
- A retried node that needs approval asks for approval again.
- The final failure raises `ApplicationError(type="DagFailed" | "TokenBudgetExceeded")` only after
  every node state is final, so the `status` query answers from the closed workflow too.
"""

import asyncio
from collections import deque
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ApplicationError, FailureError, is_cancelled_exception

from contracts import errors
from contracts.agents import AgentSnapshot
from contracts.dag import (
    TERMINAL_NODE_STATUSES,
    ApprovalDecision,
    DagCarry,
    DagEvent,
    DagEventKind,
    DagResult,
    DagStatus,
    ExecutionStatus,
    NodeOutput,
    NodeSpec,
    NodeState,
    NodeStatus,
    ResumeRequest,
    RunDagInput,
)
from contracts.templates import TemplateError, references, resolve, stringify
from contracts.tools import BUILTIN_TOOLS, OUTPUT_INLINE_LIMIT, ToolInfo, ToolResult
from contracts.usage import TokenUsage
from workflows.agent_runs import provider_failure, run_agent
from workflows.dag_state import (
    children_of,
    compact,
    expand,
    json_size,
    preview_of,
    retry_policy,
    topological_order,
)

with workflow.unsafe.imports_passed_through():
    from activities.dag import OffloadInput, load_artifact_text, offload_output
    from activities.llm import goalflow_agent
    from activities.store import resolve_agent_snapshots

STREAM_KEEP_ON_CONTINUE = 500
"""Events kept in the stream across continue-as-new; older offsets are truncated."""
RESULT_OUTPUTS_BUDGET = 256 * 1024
"""Bytes of sink outputs a DagResult may carry inline."""
STORE_TIMEOUT = timedelta(seconds=30)


def _describe(exc: BaseException) -> str:
    """The innermost failure message, prefixed by its type when it has one."""
    cause: BaseException = exc
    while isinstance(cause, FailureError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    if isinstance(cause, FailureError):
        return cause.message or type(cause).__name__
    return str(cause) or type(cause).__name__


@workflow.defn
class DagWorkflow:
    """One execution of a DAG."""

    __pydantic_ai_agents__ = [goalflow_agent]

    @workflow.init
    def __init__(self, params: RunDagInput) -> None:
        carry = params.carry
        self._stream = WorkflowStream(prior_state=carry.stream if carry else None)
        self._events = self._stream.topic("events", type=DagEvent)
        self._fresh = carry is None
        self._carry = carry or DagCarry()
        self._specs: dict[str, NodeSpec] = {node.id: node for node in params.spec.nodes}
        self._params = {**params.spec.params, **params.params}
        self._children = children_of(params.spec)
        self._order = topological_order(params.spec, self._children)
        self._nodes: dict[str, NodeState] = {node.id: NodeState(id=node.id) for node in params.spec.nodes}
        for carried in self._carry.nodes:
            self._nodes[carried.i] = expand(carried)
        self._agents: dict[str, AgentSnapshot] = dict(params.agents or {})
        self._approved: set[str] = set(self._carry.approved)
        self._waiting_deps: dict[str, int] = {}
        self._ready: deque[str] = deque()
        self._waiting_approval: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished: deque[str] = deque()
        self._awaiting_resume: list[str] = []
        self._status = ExecutionStatus.running
        self._error: str | None = None
        self._fatal: tuple[str, str] | None = None
        self._usage = sum((n.usage for n in self._nodes.values() if not n.reused), TokenUsage())
        self._seq = self._carry.event_seq
        self._finished_this_run = 0
        self._done = 0
        self._draining = False
        self._dirty = False
        self._max_parallel = params.spec.max_parallel
        self._on_failure = params.spec.on_failure
        self._max_tokens = params.spec.max_tokens_per_run
        self._nodes_per_run = params.nodes_per_run

    # ---------------------------------------------------------------- run

    @workflow.run
    async def run(self, params: RunDagInput) -> DagResult:
        """Drive the DAG to a final state; see the module docstring for failure semantics."""
        if self._fresh:
            self._publish("execution_started", message=params.spec.name)
            for node_id, output in params.reuse_outputs.items():
                if node_id in self._nodes:
                    self._reuse(node_id, output)
        try:
            await self._pin_agents(params)
            self._done = self._count_done()
            self._init_graph()
            self._report_progress()
            await self._drive(params)
        except asyncio.CancelledError:
            await self._stop_running("execution cancelled")
            self._close_unstarted(NodeStatus.cancelled, "execution cancelled")
            self._status = ExecutionStatus.cancelled
            self._publish("execution_cancelled", status=self._status)
            self._report_progress()
            raise
        return self._finish()

    async def _pin_agents(self, params: RunDagInput) -> None:
        names = sorted({n.agent for n in self._specs.values() if n.agent} - self._agents.keys())
        if not names:
            return
        if params.agents is not None:
            self._fail_now(errors.AGENT_NOT_FOUND, f"no pinned version of agent(s): {', '.join(names)}")
        try:
            pinned = await workflow.execute_activity(
                resolve_agent_snapshots,
                names,
                start_to_close_timeout=STORE_TIMEOUT,
                summary=f"pin agents {', '.join(names)}",
            )
        except FailureError as exc:
            failure = provider_failure(exc)
            kind = failure.type if failure is not None and failure.type else errors.AGENT_NOT_FOUND
            self._fail_now(kind, _describe(exc))
        self._agents.update(pinned)

    def _fail_now(self, kind: str, message: str) -> None:
        """Fail before any node ran: every node is skipped, the error is typed and final."""
        self._close_unstarted(NodeStatus.skipped, message)
        self._status = ExecutionStatus.failed
        self._error = message
        self._publish("execution_failed", status=self._status, message=message)
        raise ApplicationError(message, type=kind, non_retryable=True)

    def _reuse(self, node_id: str, output: NodeOutput) -> None:
        state = self._nodes[node_id]
        state.status = NodeStatus.succeeded
        state.output = output.value
        state.artifact = output.artifact
        state.output_preview = output.preview
        state.usage = output.usage
        state.reused = True
        self._publish("node_succeeded", node_id=node_id, status=state.status, message="reused")

    def _init_graph(self) -> None:
        """Count unfinished dependencies and queue what can start, from whatever state we have."""
        for node_id in self._order:
            state = self._nodes[node_id]
            if state.status in TERMINAL_NODE_STATUSES:
                continue
            deps = [self._nodes[d] for d in self._specs[node_id].depends_on]
            broken = next(
                (d for d in deps if d.status in TERMINAL_NODE_STATUSES - {NodeStatus.succeeded}), None
            )
            if broken is not None:
                self._set_skipped(node_id, f"dependency {broken.id!r} {broken.status}")
                continue
            waiting = sum(1 for d in deps if d.status != NodeStatus.succeeded)
            self._waiting_deps[node_id] = waiting
            if waiting == 0:
                self._ready.append(node_id)

    async def _drive(self, params: RunDagInput) -> None:
        while True:
            self._process_finished()
            if self._fatal is not None:
                kind, message = self._fatal
                await self._stop_running(message)
                self._close_unstarted(NodeStatus.skipped, message)
                self._status = ExecutionStatus.failed
                self._error = message
                self._publish("execution_failed", status=self._status, message=message)
                self._report_progress()
                raise ApplicationError(message, type=kind, non_retryable=True)
            if self._awaiting_resume and self._status != ExecutionStatus.suspended:
                self._status = ExecutionStatus.suspended
                node_id = self._awaiting_resume[0]
                self._publish(
                    "execution_suspended",
                    node_id=node_id,
                    status=self._status,
                    message=self._nodes[node_id].error or "",
                )
            self._report_progress()
            if not (self._tasks or self._ready or self._awaiting_resume or self._waiting_approval):
                return
            if self._continue_as_new_due():
                self._draining = True
                if not self._tasks and not self._awaiting_resume:
                    await self._continue_as_new(params)
            if self._status == ExecutionStatus.running and not self._draining:
                self._launch()
            await workflow.wait_condition(lambda: self._dirty)
            self._dirty = False

    def _continue_as_new_due(self) -> bool:
        if self._nodes_per_run_reached() or workflow.info().is_continue_as_new_suggested():
            return self._done + len(self._tasks) < len(self._nodes)
        return False

    def _nodes_per_run_reached(self) -> bool:
        limit = self._nodes_per_run
        return limit is not None and self._finished_this_run >= limit

    # ---------------------------------------------------------------- nodes

    def _launch(self) -> None:
        limit = self._max_parallel
        while self._ready and len(self._tasks) < limit:
            node_id = self._ready.popleft()
            node = self._specs[node_id]
            state = self._nodes[node_id]
            if node.requires_approval and node_id not in self._approved:
                state.status = NodeStatus.waiting_approval
                state.waiting_reason = "approval"
                self._waiting_approval.add(node_id)
                self._publish("node_waiting_approval", node_id=node_id, status=state.status)
                continue
            state.status = NodeStatus.running
            state.attempts += 1
            state.started_at = workflow.now()
            state.finished_at = None
            state.error = None
            state.waiting_reason = None
            self._publish("node_started", node_id=node_id, status=state.status)
            self._tasks[node_id] = asyncio.create_task(self._run_node(node))

    async def _run_node(self, node: NodeSpec) -> None:
        # No `finally`: when the worker evicts the workflow, the coroutine is closed with
        # GeneratorExit outside the workflow event loop, where workflow.now() must not run.
        state = self._nodes[node.id]
        try:
            output = await self._execute(node)
        except asyncio.CancelledError:
            state.status = NodeStatus.cancelled
            self._node_done(node.id)
            raise
        except (FailureError, TemplateError, TimeoutError) as exc:
            # A cancelled activity surfaces as ActivityError(cause=CancelledError).
            state.status = NodeStatus.cancelled if is_cancelled_exception(exc) else NodeStatus.failed
            state.error = _describe(exc)
        else:
            state.status = NodeStatus.succeeded
            state.output = output.value
            state.artifact = output.artifact
            state.output_preview = output.preview
            state.usage = output.usage
        self._node_done(node.id)

    def _node_done(self, node_id: str) -> None:
        self._nodes[node_id].finished_at = workflow.now()
        self._tasks.pop(node_id, None)
        self._finished.append(node_id)
        self._dirty = True

    def _outputs_for(self, value: Any) -> dict[str, NodeOutput]:
        return {
            ref.node: self._nodes[ref.node].node_output()
            for ref in references(value)
            if ref.node is not None and ref.node in self._nodes
        }

    async def _execute(self, node: NodeSpec) -> NodeOutput:
        if node.tool is not None:
            return await self._execute_tool(node, node.tool)
        return await self._execute_agent(node)

    async def _execute_tool(self, node: NodeSpec, tool: str) -> NodeOutput:
        info = BUILTIN_TOOLS.get(tool) or ToolInfo(name=tool)
        args = (
            resolve(node.input, params=self._params, outputs=self._outputs_for(node.input))
            if node.input
            else {}
        )
        timeout = timedelta(seconds=node.timeout_s or info.timeout_s)
        summary = f"node {node.id}: {tool}"
        if info.local:
            result = await workflow.execute_local_activity(
                tool,
                args,
                result_type=ToolResult,
                start_to_close_timeout=timeout,
                retry_policy=retry_policy(node.retry),
                summary=summary,
            )
        else:
            result = await workflow.execute_activity(
                tool,
                args,
                result_type=ToolResult,
                start_to_close_timeout=timeout,
                retry_policy=retry_policy(node.retry),
                summary=summary,
            )
        if result.artifact is not None:
            return NodeOutput(artifact=result.artifact, preview=result.preview, usage=result.usage)
        output = await self._keep_small(node.id, result.output)
        output.usage = result.usage
        if result.preview:
            output.preview = result.preview
        return output

    async def _execute_agent(self, node: NodeSpec) -> NodeOutput:
        assert node.agent is not None and node.prompt is not None
        outputs = self._outputs_for(node.prompt)
        texts: dict[str, str] = {}
        for output in outputs.values():
            if output.artifact is not None and output.artifact not in texts:
                texts[output.artifact] = await workflow.execute_activity(
                    load_artifact_text,
                    output.artifact,
                    start_to_close_timeout=STORE_TIMEOUT,
                    summary=f"node {node.id}: load {output.artifact}",
                )
        prompt = stringify(resolve(node.prompt, params=self._params, outputs=outputs, artifact_texts=texts))
        snapshot = self._agents[node.agent]
        attempts = node.retry.max_attempts if node.retry else 1
        for attempt in range(1, attempts + 1):
            try:
                if node.timeout_s is not None:
                    result = await asyncio.wait_for(run_agent(snapshot, prompt), node.timeout_s)
                else:
                    result = await run_agent(snapshot, prompt)
                break
            except (FailureError, TimeoutError):
                if attempt == attempts:
                    raise
                assert node.retry is not None
                await workflow.sleep(node.retry.initial_interval_s * node.retry.backoff ** (attempt - 1))
        output = await self._keep_small(node.id, result.output)
        output.usage = result.usage
        return output

    async def _keep_small(self, node_id: str, value: Any) -> NodeOutput:
        """Outputs over the inline limit go to an artifact so carried state and results stay small."""
        if value is None or json_size(value) <= OUTPUT_INLINE_LIMIT:
            return NodeOutput(value=value, preview=preview_of(value))
        return await workflow.execute_activity(
            offload_output,
            OffloadInput(node_id=node_id, value=value),
            start_to_close_timeout=STORE_TIMEOUT,
            summary=f"node {node_id}: store output",
        )

    def _process_finished(self) -> None:
        while self._finished:
            node_id = self._finished.popleft()
            state = self._nodes[node_id]
            self._finished_this_run += 1
            if state.status in (NodeStatus.succeeded, NodeStatus.failed):
                self._done += 1
            if state.status == NodeStatus.succeeded:
                self._usage += state.usage
                self._publish(
                    "node_succeeded", node_id=node_id, status=state.status, message=state.output_preview
                )
                for child in self._children[node_id]:
                    if self._nodes[child].status != NodeStatus.pending:
                        continue
                    self._waiting_deps[child] -= 1
                    if self._waiting_deps[child] == 0:
                        self._ready.append(child)
                budget = self._max_tokens
                if budget is not None and self._usage.total_tokens > budget and self._fatal is None:
                    self._fatal = (
                        errors.TOKEN_BUDGET_EXCEEDED,
                        f"token budget exceeded: {self._usage.total_tokens} > {budget} tokens",
                    )
            elif state.status == NodeStatus.failed:
                self._publish("node_failed", node_id=node_id, status=state.status, message=state.error or "")
                self._on_node_failure(node_id)

    def _on_node_failure(self, node_id: str) -> None:
        policy = self._on_failure
        if policy == "fail":
            if self._fatal is None:
                self._fatal = (errors.DAG_FAILED, f"node {node_id!r} failed: {self._nodes[node_id].error}")
        elif policy == "continue":
            self._skip_dependents(node_id)
        else:
            self._awaiting_resume.append(node_id)

    def _set_skipped(self, node_id: str, reason: str) -> None:
        state = self._nodes[node_id]
        state.status = NodeStatus.skipped
        state.error = reason
        self._done += 1
        self._waiting_deps.pop(node_id, None)
        self._publish("node_skipped", node_id=node_id, status=state.status, message=reason)

    def _skip_dependents(self, node_id: str) -> None:
        queue = deque([node_id])
        while queue:
            current = queue.popleft()
            for child in self._children[current]:
                if self._nodes[child].status == NodeStatus.pending:
                    self._set_skipped(child, f"dependency {current!r} {self._nodes[current].status}")
                    queue.append(child)

    async def _stop_running(self, reason: str) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while self._finished:
            state = self._nodes[self._finished.popleft()]
            if state.status == NodeStatus.cancelled:
                self._done += 1
                state.error = reason
                self._publish("node_cancelled", node_id=state.id, status=state.status, message=reason)

    def _close_unstarted(self, status: NodeStatus, reason: str) -> None:
        for state in self._nodes.values():
            if state.status in (NodeStatus.pending, NodeStatus.waiting_approval):
                state.status = status
                state.error = reason
                state.waiting_reason = None
        self._ready.clear()
        self._waiting_approval.clear()
        self._done = self._count_done()

    def _finish(self) -> DagResult:
        failed = [n.id for n in self._nodes.values() if n.status == NodeStatus.failed]
        if failed:
            self._status = ExecutionStatus.failed
            self._error = f"node(s) failed: {', '.join(failed)}"
            self._publish("execution_failed", status=self._status, message=self._error)
            self._report_progress()
            raise ApplicationError(self._error, type=errors.DAG_FAILED, non_retryable=True)
        self._status = ExecutionStatus.succeeded
        self._publish("execution_succeeded", status=self._status)
        self._report_progress()
        outputs: dict[str, Any] = {}
        budget = RESULT_OUTPUTS_BUDGET
        for node_id, children in self._children.items():
            state = self._nodes[node_id]
            value = state.output if state.artifact is None else f"artifact://{state.artifact}"
            if children or value is None:
                continue
            budget -= json_size(value)
            if budget < 0:
                break
            outputs[node_id] = value
        nodes = [n.model_copy(update={"output": None}) for n in self._nodes.values()]
        return DagResult(status=self._status, nodes=nodes, usage=self._usage, outputs=outputs)

    # ---------------------------------------------------------------- continue-as-new

    async def _continue_as_new(self, params: RunDagInput) -> None:
        self._publish("continued_as_new", message=f"run {self._carry.runs + 1}")
        self._stream.truncate(max(0, self._seq - STREAM_KEEP_ON_CONTINUE))
        spec = params.spec.model_copy(update={"nodes": list(self._specs.values())})
        carry = DagCarry(
            nodes=[compact(n) for n in self._nodes.values() if n.status in TERMINAL_NODE_STATUSES],
            approved=sorted(self._approved),
            event_seq=self._seq,
            runs=self._carry.runs + 1,
        )
        following = params.model_copy(
            update={"spec": spec, "agents": self._agents, "reuse_outputs": {}, "carry": carry}
        )
        await self._stream.continue_as_new(
            lambda state: [following.model_copy(update={"carry": carry.model_copy(update={"stream": state})})]
        )

    # ---------------------------------------------------------------- events and progress

    def _publish(
        self,
        kind: DagEventKind,
        *,
        node_id: str | None = None,
        status: str | None = None,
        message: str = "",
    ) -> None:
        self._seq += 1
        self._events.publish(
            DagEvent(
                seq=self._seq, kind=kind, node_id=node_id, status=status, message=message, at=workflow.now()
            )
        )

    def _count_done(self) -> int:
        return sum(1 for n in self._nodes.values() if n.status in TERMINAL_NODE_STATUSES)

    def _report_progress(self) -> None:
        # O(1): this runs on every loop turn, and a 10,000-node scan per turn is quadratic.
        workflow.set_current_details(f"{self._done}/{len(self._nodes)} nodes done ({self._status})")

    # ---------------------------------------------------------------- queries, updates, signals

    @workflow.query
    def status(self) -> DagStatus:
        """Live state while running; the final state once closed (used to resume with reuse)."""
        nodes = list(self._nodes.values())
        return DagStatus(
            execution_status=self._status,
            nodes=nodes,
            done=self._done,
            total=len(nodes),
            usage=self._usage,
            suspended_node=self._awaiting_resume[0] if self._awaiting_resume else None,
            error=self._error,
        )

    def _check_waiting(self, decision: ApprovalDecision) -> None:
        state = self._nodes.get(decision.node_id)
        if state is None:
            raise ApplicationError(f"unknown node {decision.node_id!r}", type=errors.UNKNOWN_NODE)
        if state.status != NodeStatus.waiting_approval:
            raise ApplicationError(
                f"node {decision.node_id!r} is not waiting for approval (it is {state.status})",
                type=errors.NODE_NOT_WAITING,
            )

    @workflow.update
    def approve(self, decision: ApprovalDecision) -> None:
        """Let a node that waits for approval run."""
        self._approve(decision)

    def _approve(self, decision: ApprovalDecision) -> None:
        node_id = decision.node_id
        self._waiting_approval.discard(node_id)
        self._approved.add(node_id)
        state = self._nodes[node_id]
        state.status = NodeStatus.pending
        state.waiting_reason = None
        self._ready.appendleft(node_id)
        self._publish("node_approved", node_id=node_id, status=state.status, message=decision.comment)
        self._dirty = True

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        self._check_waiting(decision)

    @workflow.update
    def reject(self, decision: ApprovalDecision) -> None:
        """Refuse a node that waits for approval: it fails, and `on_failure` decides what follows."""
        self._reject(decision)

    def _reject(self, decision: ApprovalDecision) -> None:
        node_id = decision.node_id
        self._waiting_approval.discard(node_id)
        state = self._nodes[node_id]
        state.status = NodeStatus.failed
        state.waiting_reason = None
        state.finished_at = workflow.now()
        state.error = f"rejected: {decision.comment}" if decision.comment else "rejected"
        self._publish("node_rejected", node_id=node_id, status=state.status, message=decision.comment)
        self._finished.append(node_id)
        self._dirty = True

    @reject.validator
    def _validate_reject(self, decision: ApprovalDecision) -> None:
        self._check_waiting(decision)

    @workflow.signal
    def approve_signal(self, decision: ApprovalDecision) -> None:
        """`approve` for `temporal workflow signal`; an invalid one is logged and ignored."""
        try:
            self._check_waiting(decision)
        except ApplicationError as exc:
            workflow.logger.warning("approve_signal ignored: %s", exc.message)
            return
        self._approve(decision)

    @workflow.signal
    def reject_signal(self, decision: ApprovalDecision) -> None:
        """`reject` for `temporal workflow signal`; an invalid one is logged and ignored."""
        try:
            self._check_waiting(decision)
        except ApplicationError as exc:
            workflow.logger.warning("reject_signal ignored: %s", exc.message)
            return
        self._reject(decision)

    @workflow.update
    def resume(self, request: ResumeRequest) -> None:
        """Un-suspend: retry the failed node, skip it (and its dependents), or patch and retry it."""
        node_id = request.node_id
        self._awaiting_resume.remove(node_id)
        state = self._nodes[node_id]
        self._done -= 1  # the failed node is open again
        if request.action == "skip":
            self._set_skipped(node_id, "skipped on resume")
            self._skip_dependents(node_id)
        else:
            node = self._specs[node_id]
            if request.action == "patch" and request.input is not None:
                if node.tool is not None:
                    self._specs[node_id] = node.model_copy(update={"input": request.input})
                else:
                    self._specs[node_id] = node.model_copy(update={"prompt": request.input["prompt"]})
            state.status = NodeStatus.pending
            state.error = None
            self._approved.discard(node_id)
            self._ready.appendleft(node_id)
        if not self._awaiting_resume:
            self._status = ExecutionStatus.running
        self._publish("execution_resumed", node_id=node_id, status=self._status, message=request.action)
        self._dirty = True

    @resume.validator
    def _validate_resume(self, request: ResumeRequest) -> None:
        if request.node_id not in self._nodes:
            raise ApplicationError(f"unknown node {request.node_id!r}", type=errors.UNKNOWN_NODE)
        if not self._awaiting_resume or self._awaiting_resume[0] != request.node_id:
            where = f"on node {self._awaiting_resume[0]!r}" if self._awaiting_resume else "at all"
            raise ApplicationError(
                f"execution is not suspended on node {request.node_id!r} (suspended {where})",
                type=errors.NOT_SUSPENDED_ON_NODE,
            )
        if request.action == "patch":
            node = self._specs[request.node_id]
            prompt = (request.input or {}).get("prompt")
            if node.agent is not None and not (isinstance(prompt, str) and prompt):
                raise ApplicationError(
                    "patching an agent node needs input {'prompt': '<non-empty text>'}",
                    type=errors.INVALID_PATCH,
                )
