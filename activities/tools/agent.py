"""`run_agent`: run the active version of a named agent inside this activity.

Outside a workflow `TemporalDurability` is transparent, so `goalflow_agent.run` here is a plain
pydantic-ai run: its model requests and tool calls happen in this activity, and its token usage
is reported in the ToolResult. Nesting depth travels in the agent deps so an agent that calls
itself through `run_agent` stops instead of recursing forever.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from temporalio.exceptions import ApplicationError

from activities.agent_options import classify_model_error, run_options, usage_counts
from activities.store import active_snapshot
from activities.tools.base import Output, ToolError, make_tool
from contracts import errors
from contracts.tool_inputs import RunAgentInput
from contracts.tools import AGENT_DEPTH_EXCEEDED
from contracts.usage import TokenUsage

MAX_AGENT_DEPTH = 3

_depth: ContextVar[int] = ContextVar("goalflow_agent_depth", default=0)


@contextmanager
def agent_depth(depth: int) -> Iterator[None]:
    """Run tools as called by an agent nested `depth` levels deep."""
    token = _depth.set(depth)
    try:
        yield
    finally:
        _depth.reset(token)


async def run_agent(args: RunAgentInput) -> Output:
    from activities.llm import goalflow_agent  # the agent's toolset imports this module

    depth = _depth.get() + 1
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
        result = await goalflow_agent.run(args.prompt, **run_options(agent, depth=depth))
    except Exception as exc:
        classified = classify_model_error(exc)
        if classified is None:
            raise
        kind, message = classified
        # Overloaded or unreachable is worth another attempt of the whole tool call.
        raise ToolError(message, kind=kind, retryable=kind == errors.PROVIDER_UNAVAILABLE) from None
    return Output(value=result.output, usage=TokenUsage(**usage_counts(result.usage, result.all_messages())))


SPEC = make_tool(
    name="run_agent",
    description="Ask another goalflow agent (by name; its active version) and return its answer.",
    input_model=RunAgentInput,
    impl=run_agent,
)
