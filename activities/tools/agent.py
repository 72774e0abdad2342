"""`run_agent`: run the active version of a named agent inside this activity.

Outside a workflow `TemporalDurability` is transparent, so `goalflow_agent.run` here is a plain
pydantic-ai run: its model requests and tool calls happen in this activity, and its token usage
is reported in the ToolResult. Nesting depth travels in the agent deps so an agent that calls
itself through `run_agent` stops instead of recursing forever.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import Field
from pydantic_ai import StructuredDict
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelRequestRejectedError,
    UnexpectedModelBehavior,
)
from pydantic_ai.settings import ModelSettings
from sqlmodel import col, select

from activities.store import snapshot_of
from activities.tools.base import Output, ToolError, ToolInput, make_tool
from contracts import errors
from contracts.agents import AgentSnapshot
from contracts.tools import AGENT_DEPTH_EXCEEDED, AgentToolDeps
from contracts.usage import TokenUsage
from core.db import session_scope
from core.models.agent import Agent, AgentName
from core.settings import get_settings

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


class RunAgentInput(ToolInput):
    """The agent name (its active version runs) and the prompt."""

    agent: AgentName
    prompt: str = Field(min_length=1, max_length=100_000)


async def _active_version(name: str) -> AgentSnapshot:
    async with session_scope(get_settings()) as session:
        query = select(Agent).where(Agent.name == name, col(Agent.is_active))
        agent = (await session.exec(query)).first()
    if agent is None:
        raise ToolError(f"agent {name!r} has no active version", kind=errors.AGENT_NOT_FOUND)
    return snapshot_of(agent)


def _settings(agent: AgentSnapshot) -> ModelSettings:
    settings = ModelSettings()
    if agent.temperature is not None:
        settings["temperature"] = agent.temperature
    if agent.max_tokens is not None:
        settings["max_tokens"] = agent.max_tokens
    return settings


async def run_agent(args: RunAgentInput) -> Output:
    from activities.llm import goalflow_agent  # the agent's toolset imports this module

    depth = _depth.get() + 1
    if depth > MAX_AGENT_DEPTH:
        raise ToolError(
            f"agents nested more than {MAX_AGENT_DEPTH} deep through run_agent",
            kind=AGENT_DEPTH_EXCEEDED,
        )
    agent = await _active_version(args.agent)
    output_type: Any = StructuredDict(agent.output_schema, name="output") if agent.output_schema else str
    try:
        result = await goalflow_agent.run(
            args.prompt,
            model=agent.model_id,
            instructions=agent.system_prompt or None,
            model_settings=_settings(agent),
            output_type=output_type,
            deps=AgentToolDeps(tools=agent.tools, depth=depth),
        )
    except ModelAuthenticationError as exc:
        raise ToolError(str(exc), kind=errors.PROVIDER_AUTH) from None
    except ModelRequestRejectedError as exc:
        raise ToolError(str(exc), kind=errors.PROVIDER_REJECTED) from None
    except ModelAPIError as exc:
        # Overloaded or unreachable: worth another attempt of the whole tool call.
        raise ToolError(str(exc), kind=errors.PROVIDER_UNAVAILABLE, retryable=True) from None
    except UnexpectedModelBehavior as exc:
        raise ToolError(str(exc), kind=errors.MODEL_OUTPUT_INVALID) from None
    usage = result.usage
    return Output(
        value=result.output,
        usage=TokenUsage(
            requests=usage.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        ),
    )


SPEC = make_tool(
    name="run_agent",
    description="Ask another goalflow agent (by name; its active version) and return its answer.",
    input_model=RunAgentInput,
    impl=run_agent,
)
