"""`goalflow_activity_agent`: agent runs that happen entirely inside one activity.

Two things run it. `agent_request` runs an agent version that lists no tools: with nothing to
call, its run is one model request, so the whole run can be one activity instead of pydantic-ai's
agent loop in the workflow (measured in bench/agent_overhead.py: the loop cost the workflow
~7 ms of CPU per node and at least two workflow tasks). The durability is the same: the request
is recorded when the activity completes and never repeated after that. To keep it so, the run is
capped at one request; an answer that needs another (an output that failed its schema) fails the
activity with `NeedsAgentLoop` and the caller runs the loop in the workflow instead. And the
`run_agent` tool (`activities/tools/agent.py`) runs a nested agent, tools included, inside its
tool activity.

Its name differs from `goalflow_agent` (whose loop runs in workflows under `TemporalDurability`),
so each durability mode has its own agent: logs and traces say which one ran.
"""

import time
from typing import Any, cast

from pydantic_ai import Agent, capture_run_messages
from pydantic_ai.capabilities import ResolveModelId
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.usage import RunUsage, UsageLimits
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agent_options import (
    FINAL_MODEL_ERRORS,
    AgentDeps,
    classify_model_error,
    run_options,
    usage_counts,
)
from activities.heartbeat import heartbeats
from activities.llm_models import MODEL_ID_PREFIX, resolve_model
from contracts import errors
from contracts.agents import (
    AGENT_REQUEST_ACTIVITY,
    NEEDS_AGENT_LOOP,
    AgentRequestInput,
    AgentRunOutput,
)
from contracts.usage import TokenUsage

activity_agent: Agent[AgentDeps, Any] = Agent(
    # Every run passes its own model id; this placeholder is never resolved.
    f"{MODEL_ID_PREFIX}0:unset",
    name="goalflow_activity_agent",
    output_type=str,
    deps_type=cast(type[AgentDeps], AgentDeps),
    capabilities=[ResolveModelId(resolve_model)],
)
"""The agent for runs inside an activity; its tools (if any) are passed per run."""

ONE_REQUEST = UsageLimits(request_limit=1)


def _spent(messages: list[ModelMessage]) -> dict[str, int]:
    usage = RunUsage()
    for message in messages:
        if isinstance(message, ModelResponse):
            usage.incr(message.usage)
            usage.requests += 1
    return usage_counts(usage)


@activity.defn(name=AGENT_REQUEST_ACTIVITY)
@heartbeats
async def agent_request(params: AgentRequestInput) -> AgentRunOutput:
    """Run an agent version without tools on a prompt: one model request, in this activity."""
    started = time.monotonic()
    with capture_run_messages() as messages:
        try:
            options = run_options(params.agent)
            result = await activity_agent.run(params.prompt, usage_limits=ONE_REQUEST, **options)
        except UsageLimitExceeded:
            raise ApplicationError(
                "the answer needs more than one model request",
                _spent(messages),
                type=NEEDS_AGENT_LOOP,
                non_retryable=True,
            ) from None
        except Exception as exc:
            classified = classify_model_error(exc)
            if classified is None:
                raise
            kind, message = classified
            # Overloaded or unreachable is worth another attempt; a rejected request is not.
            final = isinstance(exc, FINAL_MODEL_ERRORS) or kind != errors.PROVIDER_UNAVAILABLE
            raise ApplicationError(message, type=kind, non_retryable=final) from None
    return AgentRunOutput(
        output=result.output,
        usage=TokenUsage(**usage_counts(result.usage)),
        execution_time_ms=int((time.monotonic() - started) * 1000),
    )
