"""The tool registry: every tool goalflow offers to DAG nodes and agents, by name.

Each entry maps a name to its description, input model, Temporal activity (named after the tool)
and `ToolInfo` (how DagWorkflow schedules it). The worker registers `TOOL_ACTIVITIES`; the API
lists `TOOLS`. The input models live in `contracts.tool_inputs`, where the DAG validator reads
their schemas without importing the implementations.
"""

from collections.abc import Awaitable, Callable

from pydantic_ai.toolsets import AbstractToolset

from activities.agent_options import AgentDeps
from activities.tools import agent, basic, calculator, files, http, memory
from activities.tools.base import ToolSpec
from activities.tools.toolset import build_toolset
from contracts.tools import ToolDescription, ToolResult


def _nested_toolset() -> AbstractToolset[AgentDeps]:
    return NESTED_AGENT_TOOLSET


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        basic.NOOP,
        calculator.SPEC,
        basic.CURRENT_TIME,
        http.SPEC,
        files.WRITE_ARTIFACT,
        files.READ_ARTIFACT,
        memory.REMEMBER,
        memory.RECALL,
        agent.make_spec(toolset=_nested_toolset),
    )
}

NESTED_AGENT_TOOLSET = build_toolset(TOOLS.values())
"""Every tool, for agents that `run_agent` runs inside its activity (each offered only the tools
its version lists)."""

TOOL_ACTIVITIES: list[Callable[..., Awaitable[ToolResult]]] = [spec.activity for spec in TOOLS.values()]


def describe_tools(name: str | None = None) -> list[ToolDescription]:
    """Registered tools (one, if `name` is given), as the API lists them."""
    return [
        ToolDescription(
            name=spec.name,
            description=spec.description,
            input_schema=spec.input_schema(),
            local=spec.info.local,
            timeout_s=spec.info.timeout_s,
        )
        for spec in TOOLS.values()
        if name is None or spec.name == name
    ]
