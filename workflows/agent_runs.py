"""Running one pinned agent version from workflow code (shared by every workflow that calls agents).

Two modes, chosen per run:

- A version without tools, asked a text prompt, runs as one activity (`agent_request`): with no
  tool to call, its run is a single model request, so nothing durable is lost by running it whole
  inside the activity, and the workflow spends one activity and no agent loop on it (the loop cost
  ~7 ms of workflow CPU and at least one more workflow task per run; bench/agent_overhead.py). A
  completed request is recorded with the activity and never repeated. If the answer needs a second
  request (an output that failed its schema), the activity says so (`NeedsAgentLoop`) and the run
  starts over in the loop below.
- Otherwise the pydantic-ai agent loop runs here, in the workflow; each model request and tool
  call is an activity that pydantic-ai's `TemporalDurability` schedules, so a crash repeats none
  that completed.

Provider failures are turned into typed, non-retryable application errors so callers can answer
them by type.
"""

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from contracts.agents import NEEDS_AGENT_LOOP, AgentRequestInput, AgentRunOutput, AgentSnapshot
from contracts.usage import TokenUsage

with workflow.unsafe.imports_passed_through():
    from pydantic_ai.messages import UserContent

    from activities.agent_options import classify_model_error, run_options, usage_counts
    from activities.agent_request import agent_request
    from activities.heartbeat import MODEL_HEARTBEAT_TIMEOUT
    from activities.llm import goalflow_agent
    from activities.llm_models import LLM_RETRY, LLM_TIMEOUT

ONE_ACTIVITY_PATCH = "agent-run-one-activity"
"""Since this patch a version without tools runs as one `agent_request` activity; histories
recorded before it replay the agent loop."""


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


def runs_as_one_activity(agent: AgentSnapshot, prompt: str | Sequence[UserContent], output_type: Any) -> bool:
    """Whether this run is one model request: no tools, a text prompt, the version's own output."""
    return not agent.tools and isinstance(prompt, str) and output_type is None


async def run_agent(
    agent: AgentSnapshot,
    prompt: str | Sequence[UserContent],
    *,
    output_type: Any = None,
    activity_id: str | None = None,
    summary: str | None = None,
) -> AgentRunOutput:
    """Run one agent version on a prompt (text, or parts such as attached files and images);
    every model request and tool call is a Temporal activity. `output_type` replaces the
    version's own (a caller whose output is a fixed contract, such as the chat intake).
    `activity_id` and `summary` name the activity when the run is one (`runs_as_one_activity`)."""
    started = workflow.now()
    spent = TokenUsage()
    if runs_as_one_activity(agent, prompt, output_type) and workflow.patched(ONE_ACTIVITY_PATCH):
        assert isinstance(prompt, str)
        try:
            answer = await workflow.execute_activity(
                agent_request,
                # Snapshots from activity results are the host's classes; re-home them here.
                AgentRequestInput.model_validate({"agent": agent.model_dump(), "prompt": prompt}),
                activity_id=activity_id,
                start_to_close_timeout=LLM_TIMEOUT,
                heartbeat_timeout=MODEL_HEARTBEAT_TIMEOUT,
                retry_policy=LLM_RETRY,
                summary=summary or f"{agent.name} v{agent.version}",
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise  # a cancelled node stays cancelled, not a provider failure
            cause = exc.cause
            if not (isinstance(cause, ApplicationError) and cause.type == NEEDS_AGENT_LOOP):
                raise provider_failure(exc) or exc from None
            spent = TokenUsage.model_validate(cause.details[0]) if cause.details else TokenUsage()
            workflow.logger.info("%s v%s needs the agent loop: %s", agent.name, agent.version, cause.message)
        else:
            elapsed = workflow.now() - started
            return AgentRunOutput(
                output=answer.output,
                usage=TokenUsage.model_validate(answer.usage.model_dump()),
                execution_time_ms=int(elapsed.total_seconds() * 1000),
            )
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
        usage=spent + TokenUsage(**usage_counts(result.usage, result.all_messages())),
        execution_time_ms=int(elapsed.total_seconds() * 1000),
    )
