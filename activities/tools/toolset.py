"""Tools as a pydantic-ai toolset, for agents: `build_toolset(specs)` over the registry's specs.

Its `id` names the Temporal activity every agent tool call of `goalflow_agent` runs in
(`agent__goalflow_agent__toolset__goalflow_tools__call_tool`): never change it. The toolset is
filtered per run to the agent version's `tools` (carried in `AgentToolDeps`), so the model is
only offered the tools its version lists; a run without deps is offered none.

This module knows no tool by name: the registry passes the specs in, so the `run_agent` tool
(whose nested agent needs this toolset) imports nothing that imports it back.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from pydantic_ai import FunctionToolset, ModelRetry, RunContext, Tool, ToolReturn
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset
from temporalio.workflow import ActivityConfig

from activities.heartbeat import TOOL_HEARTBEAT_TIMEOUT
from activities.tools.base import ToolError, ToolSpec, run_tool
from contracts.retries import TOOL_RETRY
from contracts.tools import ARTIFACT_REF_PREFIX, USAGE_METADATA_KEY, AgentToolDeps, ToolResult

TOOLSET_ID = "goalflow_tools"

_depth: ContextVar[int] = ContextVar("goalflow_agent_depth", default=0)


@contextmanager
def agent_depth(depth: int) -> Iterator[None]:
    """Run tools as called by an agent nested `depth` levels deep."""
    token = _depth.set(depth)
    try:
        yield
    finally:
        _depth.reset(token)


def current_depth() -> int:
    """How deeply nested the agent whose tool is running now is (0: not called by an agent)."""
    return _depth.get()


def result_for_model(result: ToolResult) -> Any:
    """What the model sees: the output, or where the large output went and how to use it."""
    if result.artifact is None:
        return result.output
    return {
        "artifact": result.artifact,
        "reference": f"{ARTIFACT_REF_PREFIX}{result.artifact}",
        "preview": result.preview,
        "size_bytes": result.size_bytes,
        "note": "The full output was stored as an artifact: read it with read_artifact(name), "
        "or pass the reference as a tool input to use its content.",
    }


def _agent_tool(spec: ToolSpec) -> Tool[AgentToolDeps | None]:
    async def call(ctx: RunContext[AgentToolDeps | None], args: Any) -> Any:
        depth = ctx.deps.depth if ctx.deps is not None else 0
        try:
            with agent_depth(depth):
                result = await run_tool(spec, args)
        except ToolError as exc:
            # The model can fix its input or choose another way; the run goes on.
            raise ModelRetry(f"{exc.kind}: {exc}") from None
        if result.usage.requests:
            # Tokens spent inside the tool (an agent run by `run_agent`) ride along as metadata the
            # model never sees; the calling run adds them to its own usage.
            return ToolReturn(
                return_value=result_for_model(result),
                metadata={USAGE_METADATA_KEY: result.usage.model_dump()},
            )
        return result_for_model(result)

    call.__name__ = call.__qualname__ = spec.name
    call.__annotations__ = {
        "ctx": RunContext[AgentToolDeps | None],
        "args": spec.input_model,
        "return": Any,
    }
    return Tool(
        call,
        takes_ctx=True,
        name=spec.name,
        description=spec.description,
        metadata={
            "temporal": ActivityConfig(
                start_to_close_timeout=timedelta(seconds=spec.info.timeout_s),
                # pydantic-ai's tool-call activity beats; without a timeout a dead worker's call
                # would wait out start_to_close before its retry.
                heartbeat_timeout=TOOL_HEARTBEAT_TIMEOUT,
                retry_policy=TOOL_RETRY,
            )
        },
    )


def _offered(ctx: RunContext[AgentToolDeps | None], tool_def: ToolDefinition) -> bool:
    return ctx.deps is not None and tool_def.name in ctx.deps.tools


def build_toolset(specs: Iterable[ToolSpec]) -> AbstractToolset[AgentToolDeps | None]:
    """These tools, each offered per run only if the agent version lists it."""
    toolset = FunctionToolset([_agent_tool(spec) for spec in specs], id=TOOLSET_ID)
    return toolset.filtered(_offered)
