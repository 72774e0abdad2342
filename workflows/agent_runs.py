"""Running one pinned agent version from workflow code (shared by every workflow that calls agents).

Two modes, chosen per run:

- A version without tools, asked a text prompt, runs as one activity (`agent_request`): with no
  tool to call, its run is a single model request, so nothing durable is lost by running it whole
  inside the activity, and the workflow spends one activity and no agent loop on it (the loop cost
  ~7 ms of workflow CPU and at least one more workflow task per run; bench/agent_overhead.py). A
  completed request is recorded with the activity and never repeated. If the answer needs a second
  request (an output that failed its schema), the activity says so (`NeedsAgentLoop`) and the run
  goes on in the loop below: with one repair request (the conversation so far and pydantic-ai's
  retry prompt naming what was wrong) when the activity handed over its messages, else from the
  start.
- Otherwise the pydantic-ai agent loop runs here, in the workflow; each model request and tool
  call is an activity that pydantic-ai's `TemporalDurability` schedules, so a crash repeats none
  that completed. An output that fails its schema gets one repair request (`OUTPUT_REPAIRS`).

A version can list fallback models. When its model fails for good (a final provider error such as
401/403, an unknown model or a context too long; a retryable one once Temporal's retries are
spent; an output still invalid after its repair), the same run is made on the next fallback, each
try its own activities, so a crash repeats no request that completed and a failed model is never
asked again. This is done here rather than with pydantic-ai's `FallbackModel` (which would fall
back inside one activity at the first error, before Temporal's retries, and repeat the primary on
each retry of that activity) or its `ModelFallback` capability (per request step of the loop only,
not the one-activity mode, and blind to an output that stays invalid).

Provider failures are turned into typed, non-retryable application errors so callers can answer
them by type.
"""

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.exceptions import TimeoutError as TemporalTimeout

from contracts import errors
from contracts.agents import (
    AGENT_REQUEST_ACTIVITY,
    NEEDS_AGENT_LOOP,
    AgentRequestInput,
    AgentRunOutput,
    AgentSnapshot,
    LoopCarry,
    ModelFailure,
    node_of_activity,
)
from contracts.usage import TokenUsage

with workflow.unsafe.imports_passed_through():
    from pydantic_ai import capture_run_messages
    from pydantic_ai.exceptions import UsageLimitExceeded
    from pydantic_ai.messages import (
        ModelMessage,
        ModelMessagesTypeAdapter,
        ModelRequest,
        ModelResponse,
        ToolReturnPart,
        UserContent,
    )
    from pydantic_ai.usage import RunUsage

    from activities.agent_options import (
        classify_model_error,
        limit_reached,
        messages_as_json,
        nested_usage_counts,
        response_usage_counts,
        run_options,
        usage_counts,
    )
    from activities.agent_request import agent_request
    from activities.heartbeat import MODEL_HEARTBEAT_TIMEOUT
    from activities.llm import goalflow_agent, streaming_requests
    from activities.llm_models import LLM_RETRY, LLM_TIMEOUT
    from activities.loop_pause import LoopPaused, pausing
    from activities.tools.mcp_toolset import offering

ONE_ACTIVITY_PATCH = "agent-run-one-activity"
"""Since this patch a version without tools runs as one `agent_request` activity; histories
recorded before it replay the agent loop."""
FALLBACKS_PATCH = "agent-fallbacks"
"""Since this patch a version's fallback models answer when its own model fails for good, and an
output that failed its schema inside `agent_request` is repaired by one request in the loop (the
conversation so far) instead of the loop starting over. Checked only where a run could differ: a
version with fallbacks, or a `NeedsAgentLoop` that handed over its messages."""

FALLBACK_ON = frozenset(
    {
        errors.PROVIDER_AUTH,
        errors.PROVIDER_REJECTED,
        errors.PROVIDER_UNAVAILABLE,
        errors.PROVIDER_NOT_FOUND,
        errors.PROVIDER_INACTIVE,
        errors.PROVIDER_KEY_INVALID,
        errors.SECRET_UNREADABLE,
        errors.MODEL_OUTPUT_INVALID,
    }
)
"""Failure types of a model request after which the next model is tried: they reach the workflow
only once nothing more can be done with this model (a final error, or retries spent)."""
MODEL_ACTIVITY_SUFFIXES = ("__model_request", "__model_request_stream")
"""How pydantic-ai names the model-request activities of the loop (a tool's activity differs)."""
LOOP_STREAM_PATCH = "agent-loop-streams"
"""Since this patch the model requests of a DAG node's agent loop are streamed (pydantic-ai's
`model_request_stream` activity instead of `model_request`), and their text is published."""
REPAIR_RETRIES = {"output": 0}
"""The repair request is the run's one output retry (`OUTPUT_REPAIRS`): if it fails too, the model
failed for good."""


@dataclass
class _Tally:
    """Tokens spent by one `run_agent` call, failed tries included."""

    usage: TokenUsage = field(default_factory=TokenUsage)


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


def model_failed_for_good(exc: BaseException) -> tuple[str, str] | None:
    """(failure type, message) when the run failed because its model did, beyond repair or retry;
    None for anything else (a cancellation, a tool's failure, a bug)."""
    if is_cancelled_exception(exc):
        return None
    if isinstance(exc, ActivityError):
        kind = exc.activity_type
        if kind != AGENT_REQUEST_ACTIVITY and not kind.endswith(MODEL_ACTIVITY_SUFFIXES):
            return None  # a tool failed (even a nested agent's model): not this run's model
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            return (cause.type, cause.message) if cause.type in FALLBACK_ON else None
        if isinstance(cause, TemporalTimeout):
            return (
                errors.PROVIDER_UNAVAILABLE,
                f"model request timed out ({cause.type.name if cause.type else ''})",
            )
        return None
    classified = classify_model_error(exc)  # a model error rebuilt by pydantic-ai, an invalid output
    return classified if classified is not None and classified[0] in FALLBACK_ON else None


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
    pause_when: Callable[[], bool] | None = None,
    resume: LoopCarry | None = None,
) -> AgentRunOutput:
    """Run one agent version on a prompt (text, or parts such as attached files and images);
    every model request and tool call is a Temporal activity. `output_type` replaces the
    version's own (a caller whose output is a fixed contract, such as the chat intake).
    `activity_id` and `summary` name the activity when the run is one (`runs_as_one_activity`);
    a fallback's activity gets `-fallback-<n>` after the id.

    When the version's model fails for good, its fallbacks are tried in order; the answer says
    which model answered (`answered_by`) and which failed before it (`fallback_from`).

    With `pause_when`, an agent loop stops at a turn once it returns True and raises `LoopPaused`
    carrying the conversation; `resume` (that carry, in the next workflow run) goes on from it."""
    started = workflow.now()
    models = [agent]
    if agent.fallbacks and workflow.patched(FALLBACKS_PATCH):
        models += [agent.on_model(fallback) for fallback in agent.fallbacks]
    tally = _Tally(usage=resume.usage if resume else TokenUsage())
    failed: list[ModelFailure] = list(resume.fallback_from) if resume else []
    first = resume.model_index if resume else 0
    for index, candidate in enumerate(models):
        if index < first:
            continue
        base = summary or f"{agent.name} v{agent.version}"
        try:
            output = await _run_on(
                candidate,
                prompt,
                output_type=output_type,
                activity_id=f"{activity_id}-fallback-{index}" if activity_id and index else activity_id,
                summary=f"{base} (fallback {index}: {candidate.model_label})" if index else summary,
                tally=tally,
                pause_when=pause_when,
                resume=resume if index == first else None,
            )
        except LoopPaused as paused:
            assert isinstance(paused.carry, LoopCarry)
            paused.carry.usage = tally.usage
            paused.carry.model_index = index
            paused.carry.fallback_from = failed
            paused.carry.elapsed_ms = _elapsed_ms(started, resume)
            raise
        except Exception as exc:
            reason = model_failed_for_good(exc)
            if reason is None or index == len(models) - 1:
                final = _final(exc, reason, failed)
                if final is exc:
                    raise  # not a provider's failure: as it is, with its causes
                raise final from None
            failed.append(ModelFailure(model=candidate.model_label, error=f"{reason[0]}: {reason[1]}"[:2000]))
            workflow.logger.warning(
                "%s v%s: %s failed for good (%s); trying %s",
                agent.name,
                agent.version,
                candidate.model_label,
                reason[0],
                models[index + 1].model_label,
            )
            continue
        return AgentRunOutput(
            output=output,
            usage=tally.usage,
            execution_time_ms=_elapsed_ms(started, resume),
            answered_by=candidate.model_label,
            fallback_from=failed,
        )
    raise errors.WorkflowBug("unreachable: the last model either answers or raises")


def _elapsed_ms(started: Any, resume: LoopCarry | None) -> int:
    """Milliseconds the run has taken, earlier workflow runs included."""
    elapsed = int((workflow.now() - started).total_seconds() * 1000)
    return elapsed + (resume.elapsed_ms if resume else 0)


def _final(exc: Exception, reason: tuple[str, str] | None, failed: list[ModelFailure]) -> Exception:
    """What a run that gives up raises: the typed provider failure (naming the models tried before
    the last one, if any), or the failure itself when it is not a provider's."""
    typed = provider_failure(exc)
    if typed is None and reason is not None and failed:
        typed = ApplicationError(reason[1], type=reason[0], non_retryable=True)
    if typed is None:
        return exc
    if reason is not None and failed:
        before = "; ".join(f"{f.model}: {f.error}" for f in failed)
        return ApplicationError(
            f"{typed.message} (fallbacks tried before: {before})", type=typed.type, non_retryable=True
        )
    return typed


async def _run_on(
    agent: AgentSnapshot,
    prompt: str | Sequence[UserContent],
    *,
    output_type: Any,
    activity_id: str | None,
    summary: str | None,
    tally: _Tally,
    pause_when: Callable[[], bool] | None = None,
    resume: LoopCarry | None = None,
) -> Any:
    """One try on one model: its output; what it spent is added to `tally`, also when it fails
    or pauses."""
    repair: list[ModelMessage] | None = None
    if resume is not None:
        repair = ModelMessagesTypeAdapter.validate_python(resume.messages)
    elif runs_as_one_activity(agent, prompt, output_type) and workflow.patched(ONE_ACTIVITY_PATCH):
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
            cause = exc.cause
            if not (isinstance(cause, ApplicationError) and cause.type == NEEDS_AGENT_LOOP):
                raise
            if cause.details:
                tally.usage += TokenUsage.model_validate(cause.details[0])
            repair = _repair_messages(cause.details)
            workflow.logger.info("%s v%s needs the agent loop: %s", agent.name, agent.version, cause.message)
        else:
            tally.usage += TokenUsage.model_validate(answer.usage.model_dump())
            return answer.output
    options = run_options(agent)
    if output_type is not None:
        options["output_type"] = output_type
    carried = RunUsage()
    if resume is not None:
        # The limits count the whole run: what the conversation already holds counts.
        carried.requests = sum(isinstance(m, ModelResponse) for m in repair or [])
        requests = [m for m in repair or [] if isinstance(m, ModelRequest)]
        carried.tool_calls = sum(isinstance(part, ToolReturnPart) for m in requests for part in m.parts)
        options["usage"] = RunUsage(requests=carried.requests, tool_calls=carried.tool_calls)
    elif repair is not None:
        options["retries"] = REPAIR_RETRIES
    if repair is not None:
        options["message_history"] = repair
    # A DAG node's loop streams (its text has a node to go to); patched only then.
    live = bool(activity_id and node_of_activity(activity_id)) and workflow.patched(LOOP_STREAM_PATCH)
    if live:
        options["deps"] = options["deps"].model_copy(update={"live": activity_id})
    with capture_run_messages() as messages, offering(agent.mcp_tools):
        start = len(repair or [])
        try:
            with (
                pausing(pause_when, messages, start) if pause_when else nullcontext(),
                streaming_requests() if live else nullcontext(),
            ):
                result = await goalflow_agent.run(None if repair is not None else prompt, **options)
        except LoopPaused as paused:
            new = [*messages[start:], paused.request]
            tally.usage += TokenUsage(**response_usage_counts(new))
            tally.usage += TokenUsage(**nested_usage_counts(new))
            paused.carry = LoopCarry(messages=messages_as_json([*messages, paused.request]))
            raise
        except Exception as exc:
            # What the failed run spent (its history's responses were counted already).
            tally.usage += TokenUsage(**response_usage_counts(messages[len(repair or []) :]))
            if isinstance(exc, UsageLimitExceeded) and (typed := limit_reached(agent, exc)) is not exc:
                raise typed from None
            raise
    if resume is not None:
        # Tools' usage in the carried conversation was counted when the loop paused.
        counts = usage_counts(result.usage, result.all_messages()[start:])
        counts["requests"] -= carried.requests
        tally.usage += TokenUsage(**counts)
    else:
        tally.usage += TokenUsage(**usage_counts(result.usage, result.all_messages()))
    return result.output


def _repair_messages(details: Sequence[Any]) -> list[ModelMessage] | None:
    """The conversation `agent_request` handed over, ending in the repair request it could not
    send (pydantic-ai's retry prompt), or None to run the loop from the start."""
    if len(details) < 2 or not details[1] or not workflow.patched(FALLBACKS_PATCH):
        return None
    messages = ModelMessagesTypeAdapter.validate_python(details[1])
    return messages if messages and isinstance(messages[-1], ModelRequest) else None
