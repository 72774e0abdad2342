"""MCP tools for agents: a pydantic-ai toolset whose tools are the MCP tools of the pinned agent
version, each call one `mcp_call_tool` activity scheduled from the agent loop in the workflow.

The tools a run may offer come from the version's snapshot (`AgentSnapshot.mcp_tools`, pinned
when the run started), handed in through `offering()` around the agent run, so listing them is
pure workflow code (no activity per step) and replays the same. pydantic-ai's Temporal
integration cannot temporalize tools that are only known at run time, so this toolset schedules
its activity itself; its id is part of nothing durable.

A tool that needs a person's approval asks the gate the caller installed (a DagWorkflow node
waits as an approval node does: REST, CLI, Telegram, deadlines); without a gate (an agent test,
a goal's planner) the call is refused and the model told why. A person's rejection is told to
the model too, which can go on without the call; a call whose outcome is unknown fails the run
(the model must not send it again blindly), and so does a deadline whose `on_timeout` is `fail`.
Outside a workflow (an agent run inside an activity) no MCP tool is offered.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from pydantic_ai import ModelRetry, RunContext
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
from pydantic_core import SchemaValidator, core_schema
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from activities.heartbeat import TOOL_HEARTBEAT_TIMEOUT
from activities.tools.toolset import result_for_model
from contracts.mcp import (
    MAX_INPUT_ROUNDS,
    MCP_CALL_ACTIVITY,
    MCP_CALL_REJECTED,
    MCP_CANCEL_TASK_ACTIVITY,
    MCP_GET_TASK_ACTIVITY,
    MCP_INPUT_REFUSED,
    MCP_OUTCOME_UNKNOWN,
    MCP_TOOL_FAILED,
    MCP_UPDATE_TASK_ACTIVITY,
    TASK_POLL_MAX_S,
    McpCallInput,
    McpCallOutcome,
    McpInputRequired,
    McpQuestion,
    McpTask,
    McpTaskRef,
    McpTaskState,
    McpTool,
)
from contracts.retries import TOOL_RETRY
from contracts.tools import AgentToolDeps, ToolResult

TOOLSET_ID = "goalflow_mcp"
MAX_RETRIES = 2
"""Times the model may be told a call failed (bad input, the tool's own error) and try again."""
TASK_REQUEST_TIMEOUT = timedelta(seconds=30)
TASK_POLL_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
"""A poll reads: it is tried until the server answers (a server down for a while costs nothing
but polls), or until the server says it does not know the task (final)."""
TASK_CANCEL_RETRY = RetryPolicy(maximum_attempts=3)


@dataclass(frozen=True)
class Decision:
    """A person's (or a deadline's) answer to one call an agent wants to make, or to a question
    a tool asked (`action` and `content`, MCP elicitation)."""

    approved: bool
    comment: str = ""
    fail: bool = False
    """The deadline's `on_timeout: fail`: the node fails instead of the model being told."""
    action: str = "accept"
    content: dict[str, Any] | None = None


class McpGate(Protocol):
    """Where a node's MCP calls wait for a person: approval of a call, answers to a question."""

    async def approve(self, tool: McpTool, arguments: dict[str, Any]) -> Decision: ...

    async def ask(self, tool: McpTool, question: McpQuestion) -> Decision: ...


async def call_durably(
    mcp: McpTool,
    arguments: dict[str, Any],
    *,
    gate: McpGate | None,
    activity_id: str | None = None,
    call_timeout: timedelta,
    retry_policy: RetryPolicy,
    summary: str,
) -> ToolResult:
    """Call an MCP tool from workflow code: one `mcp_call_tool` activity, and, while the server
    asks for more input first (MCP 2026-07-28 `input_required`), its questions put to a person
    through `gate` (a durable wait like an approval) and the call made again with the answers."""
    responses: dict[str, dict[str, Any]] | None = None
    state: str | None = None
    for round_ in range(MAX_INPUT_ROUNDS):
        outcome: McpCallOutcome = await workflow.execute_activity(
            MCP_CALL_ACTIVITY,
            McpCallInput(
                server_id=mcp.server_id,
                tool=mcp.tool,
                name=mcp.name,
                arguments=arguments,
                retry_safe=mcp.retry_safe,
                input_responses=responses,
                request_state=state,
            ),
            result_type=McpCallOutcome,
            activity_id=f"{activity_id}-input-{round_}" if activity_id and round_ else activity_id,
            start_to_close_timeout=call_timeout,
            heartbeat_timeout=TOOL_HEARTBEAT_TIMEOUT,
            retry_policy=retry_policy,
            summary=summary,
        )
        if outcome.task is not None:
            # New in a call's outcome: histories from before tasks never reach this branch.
            return await follow_task(mcp, outcome.task, gate=gate, activity_id=activity_id, summary=summary)
        needed = outcome.input_required
        if needed is None:
            if outcome.result is None:
                raise ApplicationError(f"{mcp.name}: no result", type=MCP_TOOL_FAILED, non_retryable=True)
            return outcome.result
        responses = await _answers(mcp, needed, gate)
        state = needed.request_state
    raise ApplicationError(
        f"{mcp.name}: still asking after {MAX_INPUT_ROUNDS} rounds of answers",
        type=MCP_INPUT_REFUSED,
        non_retryable=True,
    )


async def _answers(mcp: McpTool, needed: McpInputRequired, gate: McpGate | None) -> dict[str, dict[str, Any]]:
    """A person's answers to a tool's questions (through `gate`), and no roots."""
    if needed.questions and gate is None:
        raise ApplicationError(
            f"{mcp.name} asks a person ({needed.questions[0].message[:200]}), which this run cannot do",
            type=MCP_INPUT_REFUSED,
            non_retryable=True,
        )
    responses: dict[str, dict[str, Any]] = {key: {"roots": []} for key in needed.roots}
    for question in needed.questions:
        assert gate is not None
        decision = await gate.ask(mcp, question)
        if decision.fail:
            raise ApplicationError(
                f"{mcp.name}: {decision.comment or 'not answered'}",
                type=MCP_INPUT_REFUSED,
                non_retryable=True,
            )
        answer: dict[str, Any] = {"action": decision.action}
        if decision.action == "accept":
            answer["content"] = decision.content or {}
        responses[question.key] = answer
    return responses


async def follow_task(
    mcp: McpTool,
    task: McpTask,
    *,
    gate: McpGate | None,
    activity_id: str | None,
    summary: str,
) -> ToolResult:
    """Follow a call the server runs as a task until it ends: a durable timer, then one short
    `mcp_get_task` poll, again (at the server's interval, slowing down by half up to
    `TASK_POLL_MAX_S`). Nothing holds an activity slot between polls and a worker restart loses
    nothing: the task id is in the history. Questions the task asks are put to a person like a
    call's and answered with `mcp_update_task` (each once); a node cancelled meanwhile (a
    cancelled execution, a failed sibling, a deadline) sends `tasks/cancel` before it ends."""
    ref = McpTaskRef(server_id=mcp.server_id, name=mcp.name, task_id=task.task_id)
    interval = task.poll_interval_s
    answered: set[str] = set()
    polls = 0
    try:
        while True:
            await workflow.sleep(timedelta(seconds=interval))
            polls += 1
            state: McpTaskState = await workflow.execute_activity(
                MCP_GET_TASK_ACTIVITY,
                ref,
                result_type=McpTaskState,
                activity_id=f"{activity_id}-task-{polls}" if activity_id else None,
                start_to_close_timeout=TASK_REQUEST_TIMEOUT,
                retry_policy=TASK_POLL_RETRY,
                summary=f"{summary}: task {task.task_id[:12]}",
            )
            if state.result is not None:
                return state.result
            needed = state.input_required
            if needed is not None:
                needed.questions = [q for q in needed.questions if q.key not in answered]
                needed.roots = [key for key in needed.roots if key not in answered]
                if needed.questions or needed.roots:
                    responses = await _answers(mcp, needed, gate)
                    answered.update(responses)
                    await workflow.execute_activity(
                        MCP_UPDATE_TASK_ACTIVITY,
                        ref.model_copy(update={"input_responses": responses}),
                        activity_id=f"{activity_id}-task-{polls}-answer" if activity_id else None,
                        start_to_close_timeout=TASK_REQUEST_TIMEOUT,
                        retry_policy=TASK_POLL_RETRY,
                        summary=f"{summary}: answer task {task.task_id[:12]}",
                    )
            ceiling = max(TASK_POLL_MAX_S, state.task.poll_interval_s)
            interval = min(max(state.task.poll_interval_s, interval * 1.5), ceiling)
    except asyncio.CancelledError:
        try:
            await workflow.execute_activity(
                MCP_CANCEL_TASK_ACTIVITY,
                ref,
                activity_id=f"{activity_id}-task-cancel" if activity_id else None,
                start_to_close_timeout=TASK_REQUEST_TIMEOUT,
                retry_policy=TASK_CANCEL_RETRY,
                summary=f"{summary}: cancel task {task.task_id[:12]}",
            )
        except ActivityError as exc:  # cancelling is a courtesy: the node is cancelled either way
            workflow.logger.warning("%s: tasks/cancel failed: %s", mcp.name, exc.cause or exc)
        raise


AGENT_CALL_IDS_PATCH = "agent-mcp-call-ids"
"""Agent MCP calls got activity ids naming their node (before: the SDK's numbered ids)."""


class _CallIds:
    """Activity ids for one agent run's MCP calls: `<prefix>-mcp-<n>`, in call order."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.prefix}-mcp-{self.count}"


_offered: ContextVar[dict[str, McpTool] | None] = ContextVar("goalflow_mcp_offered", default=None)
_gate: ContextVar[McpGate | None] = ContextVar("goalflow_mcp_gate", default=None)
_ids: ContextVar[_CallIds | None] = ContextVar("goalflow_mcp_ids", default=None)
_ANY_ARGS = SchemaValidator(core_schema.dict_schema())
"""The model's arguments go as they are: the server checks them against its own schema."""


@contextmanager
def offering(tools: list[McpTool]) -> Iterator[None]:
    """Offer these MCP tools to the agent runs started inside (the pinned version's)."""
    token = _offered.set({tool.name: tool for tool in tools})
    try:
        yield
    finally:
        _offered.reset(token)


@contextmanager
def approvals(gate: McpGate, activity_prefix: str | None = None) -> Iterator[None]:
    """Ask `gate` before any call that needs a person's approval (and for a tool's questions),
    inside this block; name the calls' activities `<activity_prefix>-mcp-<n>` (so a node's
    status can show a call's progress)."""
    token = _gate.set(gate)
    ids = _ids.set(_CallIds(activity_prefix) if activity_prefix else None)
    try:
        yield
    finally:
        _ids.reset(ids)
        _gate.reset(token)


class McpToolset(AbstractToolset[AgentToolDeps | None]):
    """The offered MCP tools the run's version lists, each call a durable activity."""

    @property
    def id(self) -> str:
        return TOOLSET_ID

    async def get_tools(self, ctx: RunContext[AgentToolDeps | None]) -> dict[str, ToolsetTool[Any]]:
        offered = _offered.get()
        if not offered or ctx.deps is None or not workflow.in_workflow():
            return {}
        return {
            name: ToolsetTool(
                toolset=self,
                tool_def=ToolDefinition(
                    name=name,
                    description=tool.description or f"{tool.tool} (MCP server {tool.server})",
                    parameters_json_schema=tool.input_schema or {"type": "object", "properties": {}},
                ),
                max_retries=MAX_RETRIES,
                args_validator=_ANY_ARGS,
            )
            for name, tool in offered.items()
            if name in ctx.deps.tools
        }

    async def call_tool(
        self,
        name: str,
        tool_args: dict[str, Any],
        ctx: RunContext[AgentToolDeps | None],
        tool: ToolsetTool[Any],
    ) -> Any:
        offered = _offered.get() or {}
        mcp = offered[name]
        if mcp.needs_approval:
            gate = _gate.get()
            if gate is None:
                raise ModelRetry(
                    f"{name} needs a person's approval, which this run cannot ask for: do without it"
                )
            decision = await gate.approve(mcp, tool_args)
            if decision.fail:
                raise ApplicationError(
                    f"{name}: {decision.comment or 'not approved'}",
                    type=MCP_CALL_REJECTED,
                    non_retryable=True,
                )
            if not decision.approved:
                why = f": {decision.comment}" if decision.comment else ""
                return f"A person rejected this call to {name}{why}. It was not made; do not try it again."
        ids = _ids.get()
        activity_id = ids.next() if ids is not None and workflow.patched(AGENT_CALL_IDS_PATCH) else None
        try:
            result = await call_durably(
                mcp,
                tool_args,
                gate=_gate.get(),
                activity_id=activity_id,
                call_timeout=timedelta(seconds=mcp.timeout_s),
                retry_policy=TOOL_RETRY,
                summary=f"call tool: {name}",
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type != MCP_OUTCOME_UNKNOWN:
                raise ModelRetry(f"{cause.type}: {cause.message}") from None
            raise  # an unknown outcome (or a timeout) is the node's to decide, not the model's
        return result_for_model(result)
