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

A version that answers text sends its one request with pydantic-ai's direct API
(`pydantic_ai.direct.model_request_stream`): the same request body the agent would send
(instructions as the system message, the version's settings), for a few ms of CPU instead of the
agent run's ~8.5 ms (measured against a fake answering at once), streamed, so the text is
published as it is written (activities/live_output.py) while only the whole answer is recorded.
A version with an `output_schema` needs pydantic-ai's output handling, so it runs the agent.

Its requests go through the provider's `LimitedModel` (`activities/provider_limits.py`, built by
`provider_model`): they wait for the provider's capacity, heartbeating, and a provider's
Retry-After fails the attempt with that exact next-retry delay (an `ApplicationError`, passed on
as it is).

Its name differs from `goalflow_agent` (whose loop runs in workflows under `TemporalDurability`),
so each durability mode has its own agent: logs and traces say which one ran.
"""

import time
from typing import Any, cast

from pydantic_ai import Agent, capture_run_messages
from pydantic_ai.capabilities import ResolveModelId
from pydantic_ai.direct import model_request_stream
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    UserPromptPart,
)
from pydantic_ai.usage import RunUsage, UsageLimits
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agent_options import (
    FINAL_MODEL_ERRORS,
    AgentDeps,
    classify_model_error,
    messages_as_json,
    response_usage_counts,
    run_options,
    usage_counts,
)
from activities.heartbeat import heartbeats
from activities.live_output import LiveOutput
from activities.llm_models import MODEL_ID_PREFIX, parse_model_id, provider_model, resolve_model
from contracts import errors
from contracts.agents import (
    AGENT_REQUEST_ACTIVITY,
    NEEDS_AGENT_LOOP,
    AgentRequestInput,
    AgentRunOutput,
    AgentSnapshot,
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


def _needs_loop(spent: dict[str, int], messages: list[ModelMessage] | None = None) -> ApplicationError:
    # The conversation so far, ending in the repair request this activity may not send, lets the
    # caller's agent loop send just that one (workflows/agent_runs.py).
    history = [messages_as_json(messages)] if messages else []
    return ApplicationError(
        "the answer needs more than one model request",
        spent,
        *history,
        type=NEEDS_AGENT_LOOP,
        non_retryable=True,
    )


async def _text_request(agent: AgentSnapshot, prompt: str) -> tuple[Any, RunUsage]:
    """One request, as the agent would send it; an answer without text needs the agent loop."""
    parsed = parse_model_id(agent.model_id)
    assert parsed is not None
    model = await provider_model(*parsed)
    options = run_options(agent)
    request = ModelRequest(parts=[UserPromptPart(prompt)], instructions=options["instructions"])
    live = LiveOutput()
    async with model_request_stream(model, [request], model_settings=options["model_settings"]) as stream:
        async for event in stream:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                await live.add(event.part.content)
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                await live.add(event.delta.content_delta)
        response = stream.get()
    await live.flush()
    if not response.text or response.tool_calls:
        raise _needs_loop(response_usage_counts([response]))
    usage = RunUsage(requests=1)
    usage.incr(response.usage)
    return response.text, usage


async def _structured_run(agent: AgentSnapshot, prompt: str) -> tuple[Any, RunUsage]:
    """The agent run (its output handling), capped at one request."""
    with capture_run_messages() as messages:
        try:
            result = await activity_agent.run(prompt, **{**run_options(agent), "usage_limits": ONE_REQUEST})
        except UsageLimitExceeded:
            raise _needs_loop(response_usage_counts(messages), messages) from None
    return result.output, result.usage


@activity.defn(name=AGENT_REQUEST_ACTIVITY)
@heartbeats
async def agent_request(params: AgentRequestInput) -> AgentRunOutput:
    """Run an agent version without tools on a prompt: one model request, in this activity."""
    started = time.monotonic()
    run = _text_request if params.agent.output_schema is None else _structured_run
    try:
        output, usage = await run(params.agent, params.prompt)
    except ApplicationError as exc:
        # Passed on as it is, but raised afresh here: its traceback through the streamed request's
        # context managers made a failure larger than Temporal keeps as the next attempt's cause.
        raise ApplicationError(
            exc.message,
            *exc.details,
            type=exc.type,
            non_retryable=exc.non_retryable,
            next_retry_delay=exc.next_retry_delay,
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
        output=output,
        usage=TokenUsage(**usage_counts(usage)),
        execution_time_ms=int((time.monotonic() - started) * 1000),
    )
