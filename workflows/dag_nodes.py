"""Running one DAG node from DagWorkflow: a tool node is one activity named after the tool (a
local activity when the tool is marked `local`), an agent node a pydantic-ai run on the pinned
agent version (one `agent_request` activity when the version lists no tools, else the agent loop
in the workflow; see `workflows/agent_runs.py`). Activity ids are `<node id>-<attempt>` so the
Web UI, the CLI and offloaded artifacts name the node they belong to.
"""

import asyncio
import json
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

from contracts.agents import AgentSnapshot, LoopCarry
from contracts.dag import NodeOutput, NodeSpec, NodeState
from contracts.mcp import MCP_CALL_ACTIVITY, McpTool, is_mcp_tool
from contracts.templates import references, resolve, stringify
from contracts.tools import BUILTIN_TOOLS, OUTPUT_INLINE_LIMIT, PREVIEW_CHARS, ToolInfo, ToolResult
from workflows.agent_runs import run_agent
from workflows.dag_state import retry_policy
from workflows.store_options import STORE_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from activities.dag import OffloadInput, load_artifact_text, offload_output
    from activities.heartbeat import STORE_HEARTBEAT_TIMEOUT, TOOL_HEARTBEAT_TIMEOUT
    from activities.loop_pause import LoopPaused
    from activities.tools.mcp_toolset import McpGate, approvals, call_durably

LOCAL_FAILURE_BYTES = 8 * 1024
"""What a failed local activity's marker may carry besides its message (a stack trace)."""
NODE_ACTIVITY_IDS = "node-activity-ids"
"""Patch: histories recorded before activities were named after nodes keep the SDK's ids."""


def tool_info(node: NodeSpec) -> ToolInfo | None:
    """How a tool node is scheduled; None for an agent node. An MCP tool is one `mcp_call_tool`
    activity (its timeout is its server's: `NodeRunner._execute_mcp`)."""
    if node.tool is None:
        return None
    if is_mcp_tool(node.tool):
        return ToolInfo(name=MCP_CALL_ACTIVITY)
    return BUILTIN_TOOLS.get(node.tool) or ToolInfo(name=node.tool)


def with_overrides(snapshot: AgentSnapshot, node: NodeSpec) -> AgentSnapshot:
    """The pinned version with the node's own `model` / `temperature` (a fork's patch, say).
    Nodes without them keep the snapshot as it is, so histories from before the fields replay."""
    overrides = {"model": node.model, "temperature": node.temperature}
    changes = {key: value for key, value in overrides.items() if value is not None}
    return snapshot.model_copy(update=changes) if changes else snapshot


def describe(exc: BaseException) -> str:
    """The innermost failure message, prefixed by its type when it has one."""
    cause: BaseException = exc
    while isinstance(cause, FailureError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    if isinstance(cause, FailureError):
        return cause.message or type(cause).__name__
    return str(cause) or type(cause).__name__


class NodeRunner:
    """Executes nodes against the run's params, pinned agents and finished nodes' outputs."""

    def __init__(
        self,
        *,
        params: Mapping[str, Any],
        agents: Mapping[str, AgentSnapshot],
        nodes: Mapping[str, NodeState],
    ) -> None:
        self._params = params
        self._agents = agents
        self._nodes = nodes
        self.mcp_tools: dict[str, McpTool] = {}
        """The MCP tools the run's tool nodes use, pinned when it started."""
        self.tool_gate: Callable[[str], McpGate] | None = None
        """Where an agent node's MCP calls that need approval wait (the workflow's control)."""
        self.local_result_bytes = 0
        """Result bytes of every local activity so far: what their markers carry into history."""
        self.pause_when: Callable[[], bool] | None = None
        """When an agent node's loop should stop at a turn (the workflow is due to continue as new)."""

    def _outputs_for(self, value: Any) -> dict[str, NodeOutput]:
        return {
            ref.node: self._nodes[ref.node].node_output()
            for ref in references(value)
            if ref.node is not None and ref.node in self._nodes
        }

    async def execute(self, node: NodeSpec, attempt: int, *, resume: LoopCarry | None = None) -> NodeOutput:
        """Run the node once (Temporal retries inside); raises FailureError/TemplateError/TimeoutError,
        or `LoopPaused` when an agent node's loop stopped for continue-as-new (`resume` goes on)."""
        key = f"{node.id}-{attempt}"
        if not workflow.patched(NODE_ACTIVITY_IDS):
            key = ""
        info = tool_info(node)
        if info is not None:
            return await self._execute_tool(node, info, key)
        return await self._execute_agent(node, key, resume)

    async def _execute_tool(self, node: NodeSpec, info: ToolInfo, key: str) -> NodeOutput:
        args = (
            resolve(node.input, params=self._params, outputs=self._outputs_for(node.input))
            if node.input
            else {}
        )
        if node.tool is not None and is_mcp_tool(node.tool):
            return await self._execute_mcp(node, args, key)
        timeout = timedelta(seconds=node.timeout_s or info.timeout_s)
        # Results are decoded here, not by the SDK: a result that does not decode then fails this
        # node (and `on_failure` applies) instead of failing the whole workflow task.
        options: dict[str, Any] = {
            "activity_id": key or None,
            "start_to_close_timeout": timeout,
            "retry_policy": retry_policy(node.retry),
            "summary": f"node {node.id}: {info.name}",
        }
        if info.local:
            # Local activities cannot heartbeat: only millisecond tools are local.
            try:
                raw = await workflow.execute_local_activity(info.name, args, **options)
            except FailureError as exc:
                # A failure marker carries the failure, stack trace included.
                self.local_result_bytes += LOCAL_FAILURE_BYTES + len(str(exc))
                raise
            result = ToolResult.model_validate(raw)
            self.local_result_bytes += result.size_bytes + len(result.preview) + len(result.artifact or "")
        else:
            # Same command as before, one more option: no patch needed, old histories replay.
            raw = await workflow.execute_activity(
                info.name, args, heartbeat_timeout=TOOL_HEARTBEAT_TIMEOUT, **options
            )
            result = ToolResult.model_validate(raw)
        return await self._node_output(node, key, result)

    async def _execute_mcp(self, node: NodeSpec, args: Any, key: str) -> NodeOutput:
        """One `mcp_call_tool` activity; the activity decides what may be sent twice."""
        assert node.tool is not None
        tool = self.mcp_tools[node.tool]
        result = await call_durably(
            tool,
            args if isinstance(args, dict) else {},
            gate=self.tool_gate(node.id) if self.tool_gate else None,
            activity_id=key or None,
            call_timeout=timedelta(seconds=node.timeout_s or tool.timeout_s),
            retry_policy=retry_policy(node.retry),
            summary=f"node {node.id}: {tool.name}",
        )
        return await self._node_output(node, key, result)

    async def _node_output(self, node: NodeSpec, key: str, result: ToolResult) -> NodeOutput:
        if result.artifact is not None:
            return NodeOutput(artifact=result.artifact, preview=result.preview, usage=result.usage)
        output = await self._keep_small(node.id, key, result.output)
        output.usage = result.usage
        if result.preview:
            output.preview = result.preview
        return output

    async def _execute_agent(self, node: NodeSpec, key: str, resume: LoopCarry | None) -> NodeOutput:
        assert node.agent is not None and node.prompt is not None
        outputs = self._outputs_for(node.prompt) if resume is None else {}  # a resumed loop has its prompt
        texts: dict[str, str] = {}
        for output in outputs.values():
            if output.artifact is not None and output.artifact not in texts:
                texts[output.artifact] = await workflow.execute_activity(
                    load_artifact_text,
                    output.artifact,
                    activity_id=f"{key}-load-{len(texts)}" if key else None,
                    start_to_close_timeout=STORE_TIMEOUT,
                    heartbeat_timeout=STORE_HEARTBEAT_TIMEOUT,
                    summary=f"node {node.id}: load {output.artifact}",
                )
        prompt = stringify(resolve(node.prompt, params=self._params, outputs=outputs, artifact_texts=texts))
        snapshot = with_overrides(self._agents[node.agent], node)
        attempts = node.retry.max_attempts if node.retry else 1
        first = resume.node_try if resume else 1
        for attempt in range(first, attempts + 1):
            # A version without tools is one `agent_request` activity, named after the node.
            run = run_agent(
                snapshot,
                prompt,
                activity_id=f"{key}-agent-{attempt}" if key else None,
                summary=f"node {node.id}: {snapshot.name} v{snapshot.version}",
                pause_when=self.pause_when,
                resume=resume if attempt == first else None,
            )
            bounded = asyncio.wait_for(run, node.timeout_s) if node.timeout_s is not None else run
            try:
                prefix = f"{key}-agent-{attempt}" if key else None
                with approvals(self.tool_gate(node.id), prefix) if self.tool_gate else nullcontext():
                    result = await bounded
                break
            except LoopPaused as paused:
                assert isinstance(paused.carry, LoopCarry)
                paused.carry.node_try = attempt
                raise
            except (FailureError, TimeoutError):
                if attempt == attempts:
                    raise
                assert node.retry is not None
                await workflow.sleep(node.retry.initial_interval_s * node.retry.backoff ** (attempt - 1))
        output = await self._keep_small(node.id, key, result.output)
        output.usage = result.usage
        if (state := self._nodes.get(node.id)) is not None:  # the status names the model that answered
            state.answered_by, state.fallback_from = result.answered_by, result.fallback_from
        return output

    async def _keep_small(self, node_id: str, key: str, value: Any) -> NodeOutput:
        """Outputs over the inline limit go to an artifact so carried state and results stay small."""
        if value is None:
            return NodeOutput()
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        if len(text) <= OUTPUT_INLINE_LIMIT // 4 or len(text.encode()) <= OUTPUT_INLINE_LIMIT:
            return NodeOutput(value=value, preview=text[:PREVIEW_CHARS])
        return await workflow.execute_activity(
            offload_output,
            OffloadInput(node_id=node_id, value=value),
            activity_id=f"{key}-store" if key else None,
            start_to_close_timeout=STORE_TIMEOUT,
            heartbeat_timeout=STORE_HEARTBEAT_TIMEOUT,
            summary=f"node {node_id}: store output",
        )
