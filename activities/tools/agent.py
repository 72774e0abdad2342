"""`run_agent`: run the active version of a named agent inside this activity.

The nested run is `goalflow_activity_agent` (`activities/agent_request.py`), the agent whose runs
happen inside an activity: its model requests and tool calls happen here, and its token usage is
reported in the ToolResult. Its tools are the registry's, handed in by the registry (`make_spec`),
so this module imports nothing that imports it back. Nesting depth travels in the agent deps so an
agent that calls itself through `run_agent` stops instead of recursing forever.
"""

from collections.abc import Callable

from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.toolsets import AbstractToolset
from temporalio.exceptions import ApplicationError

from activities.agent_options import AgentDeps, classify_model_error, limit_reached, run_options, usage_counts
from activities.agent_request import activity_agent
from activities.store import active_snapshot
from activities.tools.base import Output, ToolError, ToolSpec, make_tool
from activities.tools.toolset import current_depth
from contracts import errors
from contracts.tool_inputs import RunAgentInput
from contracts.tools import AGENT_DEPTH_EXCEEDED
from contracts.usage import TokenUsage

MAX_AGENT_DEPTH = 3


def make_spec(toolset: Callable[[], AbstractToolset[AgentDeps]]) -> ToolSpec:
    """The `run_agent` tool, whose nested agents are offered (their listed tools of) `toolset()`."""

    async def run_agent(args: RunAgentInput) -> Output:
        depth = current_depth() + 1
        if depth > MAX_AGENT_DEPTH:
            raise ToolError(
                f"agents nested more than {MAX_AGENT_DEPTH} deep through run_agent",
                kind=AGENT_DEPTH_EXCEEDED,
            )
        try:
            agent = await active_snapshot(args.agent)
        except ApplicationError as exc:  # unknown agent: tell the calling model, don't fail the run
            raise ToolError(exc.message, kind=exc.type or errors.AGENT_NOT_FOUND) from None
        try:
            result = await activity_agent.run(
                args.prompt, toolsets=[toolset()], **run_options(agent, depth=depth)
            )
        except UsageLimitExceeded as exc:  # final: the same run would stop at the same limit
            raise ToolError(str(limit_reached(agent, exc)), kind=errors.AGENT_LIMIT_REACHED) from None
        except Exception as exc:
            classified = classify_model_error(exc)
            if classified is None:
                raise
            kind, message = classified
            # Overloaded or unreachable is worth another attempt of the whole tool call.
            raise ToolError(message, kind=kind, retryable=kind == errors.PROVIDER_UNAVAILABLE) from None
        usage = TokenUsage(**usage_counts(result.usage, result.all_messages()))
        return Output(value=result.output, usage=usage)

    return make_tool(
        name="run_agent",
        description="Ask another goalflow agent (by name; its active version) and return its answer.",
        input_model=RunAgentInput,
        impl=run_agent,
    )
