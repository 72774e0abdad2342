"""Running one pinned agent version from workflow code (shared by every workflow that calls agents).

The pydantic-ai agent loop runs here, in the workflow; each model request is an activity that
pydantic-ai's `TemporalDurability` schedules. Provider failures are turned into typed,
non-retryable application errors so callers can answer them by type.
"""

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from contracts import errors
from contracts.agents import AgentRunOutput, AgentSnapshot
from contracts.tools import AgentToolDeps
from contracts.usage import TokenUsage

with workflow.unsafe.imports_passed_through():
    from pydantic_ai import StructuredDict
    from pydantic_ai.exceptions import (
        ModelAPIError,
        ModelAuthenticationError,
        ModelHTTPError,
        ModelRequestRejectedError,
        UnexpectedModelBehavior,
    )
    from pydantic_ai.settings import ModelSettings

    from activities.llm import goalflow_agent


def _model_settings(agent: AgentSnapshot) -> ModelSettings:
    settings = ModelSettings()
    if agent.temperature is not None:
        settings["temperature"] = agent.temperature
    if agent.max_tokens is not None:
        settings["max_tokens"] = agent.max_tokens
    return settings


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


def provider_failure(exc: BaseException) -> ApplicationError | None:
    """The typed, final error for a failed agent run, or None if it is not a provider failure."""
    if isinstance(exc, ActivityError) and isinstance(exc.cause, ApplicationError):
        cause = exc.cause
        return ApplicationError(cause.message, type=cause.type, non_retryable=True)
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
    message = describe_model_error(exc) if isinstance(exc, ModelAPIError) else str(exc)
    return ApplicationError(message, type=kind, non_retryable=True)


async def run_agent(agent: AgentSnapshot, prompt: str) -> AgentRunOutput:
    """Run one agent version on a prompt; every model request is a Temporal activity."""
    output_type: Any = StructuredDict(agent.output_schema, name="output") if agent.output_schema else str
    started = workflow.now()
    try:
        result = await goalflow_agent.run(
            prompt,
            model=agent.model_id,
            instructions=agent.system_prompt or None,
            model_settings=_model_settings(agent),
            output_type=output_type,
            # Only the tools this version lists are offered; each call is an activity.
            deps=AgentToolDeps(tools=agent.tools),
        )
    except Exception as exc:
        failure = provider_failure(exc)
        if failure is None:
            raise
        raise failure from None
    elapsed = workflow.now() - started
    usage = result.usage
    return AgentRunOutput(
        output=result.output,
        usage=TokenUsage(
            requests=usage.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        ),
        execution_time_ms=int(elapsed.total_seconds() * 1000),
    )
