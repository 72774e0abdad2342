"""Running one pinned agent version from workflow code (shared by every workflow that calls agents).

The pydantic-ai agent loop runs here, in the workflow; each model request is an activity that
pydantic-ai's `TemporalDurability` schedules. Provider failures are turned into typed,
non-retryable application errors so callers can answer them by type.
"""

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from contracts.agents import AgentRunOutput, AgentSnapshot
from contracts.usage import TokenUsage

with workflow.unsafe.imports_passed_through():
    from pydantic_ai.messages import UserContent

    from activities.agent_options import classify_model_error, run_options, usage_counts
    from activities.llm import goalflow_agent


def provider_failure(exc: BaseException) -> ApplicationError | None:
    """The typed, final error for a failed agent run, or None if it is not a provider failure."""
    if isinstance(exc, ActivityError) and isinstance(exc.cause, ApplicationError):
        cause = exc.cause
        return ApplicationError(cause.message, type=cause.type, non_retryable=True)
    classified = classify_model_error(exc)
    if classified is None:
        return None
    kind, message = classified
    return ApplicationError(message, type=kind, non_retryable=True)


async def run_agent(
    agent: AgentSnapshot, prompt: str | Sequence[UserContent], *, output_type: Any = None
) -> AgentRunOutput:
    """Run one agent version on a prompt (text, or parts such as attached files and images);
    every model request and tool call is a Temporal activity. `output_type` replaces the
    version's own (a caller whose output is a fixed contract, such as the chat intake)."""
    started = workflow.now()
    options = run_options(agent)
    if output_type is not None:
        options["output_type"] = output_type
    try:
        result = await goalflow_agent.run(prompt, **options)
    except Exception as exc:
        failure = provider_failure(exc)
        if failure is None:
            raise
        raise failure from None
    elapsed = workflow.now() - started
    return AgentRunOutput(
        output=result.output,
        usage=TokenUsage(**usage_counts(result.usage, result.all_messages())),
        execution_time_ms=int(elapsed.total_seconds() * 1000),
    )
