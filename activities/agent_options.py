"""How one agent version is run, shared by both of goalflow's agents: `goalflow_agent`, whose loop
runs in a workflow (`activities/llm.py`, `workflows/agent_runs.py`), and `goalflow_activity_agent`,
whose whole run happens inside one activity (`activities/agent_request.py`, and the `run_agent`
tool): one place for the run options, the usage roll-up and the classification of provider
failures."""

from typing import Any

from pydantic_ai import StructuredDict
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelHTTPError,
    ModelQuotaExceededError,
    ModelRequestRejectedError,
    ModelRequestTimeout,
    UnexpectedModelBehavior,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    ToolReturnPart,
)
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RunUsage, UsageLimits
from temporalio.exceptions import ApplicationError

from contracts import errors
from contracts.agents import AgentSnapshot
from contracts.tools import USAGE_METADATA_KEY, AgentToolDeps

AgentDeps = AgentToolDeps | None
"""Each run passes the version's tool names; a run without deps is offered no tools."""

FINAL_MODEL_ERRORS = (ModelRequestRejectedError, ModelQuotaExceededError, ModelRequestTimeout)
"""Model errors another attempt cannot fix (pydantic-ai's default for its model activities); with
401/403 (`ModelAuthenticationError`), an unknown model (`ModelNotFoundError`) and a context too long
(`ModelContextWindowExceededError`) among the rejected. A run whose model fails with one of them
moves to the version's next fallback model (`workflows/agent_runs.py`)."""

OUTPUT_REPAIRS = 1
"""Requests a run may spend repairing an output that failed its schema (pydantic-ai's output
retries, each sent with what was wrong); an output still invalid after them is a failure of the
model (`ModelOutputInvalid`), and the run moves to the next fallback model."""


def run_options(agent: AgentSnapshot, *, depth: int = 0) -> dict[str, Any]:
    """Keyword arguments for `goalflow_agent.run` that make it this agent version."""
    settings = ModelSettings()
    if agent.temperature is not None:
        settings["temperature"] = agent.temperature
    if agent.max_tokens is not None:
        settings["max_tokens"] = agent.max_tokens
    options: dict[str, Any] = {
        "model": agent.model_id,
        "instructions": agent.system_prompt or None,
        "model_settings": settings,
        "output_type": StructuredDict(agent.output_schema, name="output") if agent.output_schema else str,
        # Only the tools this version lists are offered; each call is an activity in a workflow.
        "deps": AgentToolDeps(tools=agent.tools, depth=depth),
        "retries": {"output": OUTPUT_REPAIRS},
    }
    if agent.max_requests is not None:  # a snapshot pinned before the limits keeps pydantic-ai's
        options["usage_limits"] = UsageLimits(
            request_limit=agent.max_requests, tool_calls_limit=agent.max_tool_calls
        )
    return options


def limit_reached(agent: AgentSnapshot, exc: Exception) -> Exception:
    """The typed, final failure of a run that reached one of its version's limits, naming the
    settings that raise them; `exc` itself when the version sets none (runs pinned before)."""
    if agent.max_requests is None:
        return exc
    tool_calls = agent.max_tool_calls if agent.max_tool_calls is not None else "no limit"
    return ApplicationError(
        f"{agent.name} v{agent.version} stopped: {exc} (its max_requests is {agent.max_requests}, "
        f"max_tool_calls {tool_calls}; a version with higher limits runs longer)",
        type=errors.AGENT_LIMIT_REACHED,
        non_retryable=True,
    )


def usage_counts(usage: RunUsage, messages: list[ModelMessage] | None = None) -> dict[str, int]:
    """pydantic-ai's usage, plus what tools spent when `messages` are given, as plain counts for
    `TokenUsage(**...)`.

    Plain values, not a model: this module is passed through the workflow sandbox, and a
    host-side `TokenUsage` would be rejected by the sandbox's own copy of the contracts."""
    nested = nested_usage_counts(messages or [])
    return {
        "requests": usage.requests + nested["requests"],
        "input_tokens": usage.input_tokens + nested["input_tokens"],
        "output_tokens": usage.output_tokens + nested["output_tokens"],
    }


def messages_as_json(messages: list[ModelMessage]) -> list[Any]:
    """A conversation as plain JSON values, to hand to the workflow in a failure's details."""
    return ModelMessagesTypeAdapter.dump_python(messages, mode="json")


def response_usage_counts(messages: list[ModelMessage]) -> dict[str, int]:
    """Counts of the model responses among `messages`: what a run that raised had spent."""
    usage = RunUsage()
    for message in messages:
        if isinstance(message, ModelResponse):
            usage.incr(message.usage)
            usage.requests += 1
    return usage_counts(usage)


def nested_usage_counts(messages: list[ModelMessage]) -> dict[str, int]:
    """Token counts spent inside tools during a run (agents called through `run_agent`), read
    from the tool-return metadata the toolset attaches, so "agent calls inside tools" count."""
    totals = {"requests": 0, "input_tokens": 0, "output_tokens": 0}
    for message in messages:
        if not isinstance(message, ModelRequest):
            continue
        for part in message.parts:
            metadata = part.metadata if isinstance(part, ToolReturnPart) else None
            if isinstance(metadata, dict) and isinstance(metadata.get(USAGE_METADATA_KEY), dict):
                for key in totals:
                    totals[key] += int(metadata[USAGE_METADATA_KEY].get(key, 0))
    return totals


def describe_model_error(exc: ModelAPIError) -> str:
    """The provider's own words with the status and model, instead of pydantic-ai's repr line."""
    if not isinstance(exc, ModelHTTPError):
        return str(exc)
    detail: Any = exc.body
    if isinstance(detail, dict):
        detail = detail.get("message") or detail.get("error") or detail
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
    return f"provider answered HTTP {exc.status_code} for model {exc.model_name!r}: {detail}"


def classify_model_error(exc: BaseException) -> tuple[str, str] | None:
    """(goalflow error type, message) for a failed model call, or None if it is not one."""
    if isinstance(exc, ModelAuthenticationError):
        kind = errors.PROVIDER_AUTH
    elif isinstance(exc, ModelRequestRejectedError):
        kind = errors.PROVIDER_REJECTED
    elif isinstance(exc, ModelAPIError):
        kind = errors.PROVIDER_UNAVAILABLE
    elif isinstance(exc, UnexpectedModelBehavior):
        kind = errors.MODEL_OUTPUT_INVALID
    else:
        return None
    return kind, describe_model_error(exc) if isinstance(exc, ModelAPIError) else str(exc)
