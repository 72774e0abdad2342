"""MessageWorkflow: one chat message classified, its entities extracted, a task made if it is one.

The `classifier` and `extractor` agents are ordinary versioned agents, pinned at each attempt;
each answers a fixed JSON schema (contracts/intake.py), natively on the local model and through
an output tool elsewhere, and every model request is an activity. While no provider is usable
(no active agent version, provider inactive, unreachable or refusing the key) the message stays
pending with the reason and the workflow tries again after a growing wait; a bad answer fails
the message with the reason.
"""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from contracts import errors
from contracts.agents import AgentSnapshot
from contracts.intake import (
    CLASSIFICATION_SCHEMA,
    EXTRACTION_SCHEMA,
    RUN_KIND_MESSAGE,
    Classification,
    IntakeAgents,
    MessageAnalysis,
    MessageInput,
    MessageOutcome,
    MessageProgress,
    ProgressStage,
    RawEntities,
    StoreAnalysisInput,
    classification_prompt,
    extraction_prompt,
    resolve_entities,
    task_from_message,
)
from contracts.usage import TokenUsage
from contracts.workflow_names import MESSAGE_WORKFLOW
from workflows.agent_runs import run_agent
from workflows.store_options import STORE_RETRY, STORE_TIMEOUT
from workflows.usage import record_usage

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError
    from pydantic_ai import NativeOutput, StructuredDict

    from activities.intake import pin_intake_agents, store_message_analysis, update_message_progress
    from activities.llm import goalflow_agent

WAIT_FOR_PROVIDER = frozenset(
    {
        errors.AGENT_NOT_FOUND,
        errors.PROVIDER_NOT_FOUND,
        errors.PROVIDER_INACTIVE,
        errors.PROVIDER_AUTH,
        errors.PROVIDER_UNAVAILABLE,
        errors.PROVIDER_KEY_INVALID,
        errors.SECRET_UNREADABLE,
    }
)
"""Failures a person fixes by configuring a provider or agent: the message waits, then retries."""

FIRST_WAIT_S = 5.0
MAX_WAIT_S = 600.0
SAVE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=20)
"""Storing a result outlives a short database outage (about 8 minutes): the model's work is
not thrown away because the database blinked."""


def wait_before_retry(waits: int) -> timedelta:
    """5 s, 10 s, 20 s, ... at most 10 minutes between attempts while no provider is usable."""
    return timedelta(seconds=min(FIRST_WAIT_S * 2 ** min(waits, 20), MAX_WAIT_S))


def failure_type(exc: BaseException) -> tuple[str, str] | None:
    """(type, message) of a typed failure from an activity or an agent run, else None."""
    cause: BaseException = exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type, cause.message
    return None


def _output(agent: AgentSnapshot, agents: IntakeAgents, schema: dict[str, Any], name: str) -> Any:
    structured = StructuredDict(schema, name=name)
    return NativeOutput(structured) if agent.name in agents.native else structured


class _BadAnswer(Exception):
    """An agent's answer does not fit its schema."""


@workflow.defn(name=MESSAGE_WORKFLOW)
class MessageWorkflow:
    """Classify, extract, store (and make the task), record usage; waits out provider outages."""

    __pydantic_ai_agents__ = [goalflow_agent]

    @workflow.run
    async def run(self, params: MessageInput) -> MessageOutcome:
        self._params = params
        self._spent = TokenUsage()  # every agent answer so far: a bad answer still cost tokens
        try:
            return await self._until_processed(params)
        except asyncio.CancelledError:
            await self._progress("failed", reason="cancelled")  # cancellation is delivered once
            raise
        except Exception as exc:  # a bug: the message says so, and the workflow fails with it
            await self._progress("failed", reason=f"internal error: {type(exc).__name__}: {exc}")
            # Typed as a bug so it fails the run (a bare exception would hold it); the progress
            # above is already in the history, so holding it could never replay differently.
            raise errors.WorkflowBug(f"{type(exc).__name__}: {exc}") from exc

    async def _until_processed(self, params: MessageInput) -> MessageOutcome:
        await self._progress("analysing")
        waits = params.waits
        while True:
            try:
                return await self._process()
            except _BadAnswer as exc:
                return await self._fail(str(exc))
            except (ActivityError, ApplicationError) as exc:
                typed = failure_type(exc)
                if typed is None:
                    raise
                kind, message = typed
                if kind not in WAIT_FOR_PROVIDER:
                    return await self._fail(f"{kind}: {message}")
            delay = wait_before_retry(waits)
            waits += 1
            reason = f"waiting for a usable provider ({kind}: {message})"
            workflow.set_current_details(f"{reason}; next attempt in {delay.total_seconds():g} s")
            await self._progress("waiting_for_provider", reason=reason, retry_in_s=delay.total_seconds())
            await workflow.sleep(delay)
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(params.model_copy(update={"waits": waits}))

    async def _process(self) -> MessageOutcome:
        params = self._params
        agents = await workflow.execute_activity(
            pin_intake_agents,
            [params.classifier, params.extractor],
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"pin agents {params.classifier}, {params.extractor}",
        )
        workflow.set_current_details(
            f"classifying with {agents.classifier.name} v{agents.classifier.version}, extracting with "
            f"{agents.extractor.name} v{agents.extractor.version}"
        )
        classified = await run_agent(
            agents.classifier,
            classification_prompt(params.text, params.sent_at),
            output_type=_output(agents.classifier, agents, CLASSIFICATION_SCHEMA, "classification"),
        )
        self._spent += classified.usage
        extracted = await run_agent(
            agents.extractor,
            extraction_prompt(params.text, params.sent_at),
            output_type=_output(agents.extractor, agents, EXTRACTION_SCHEMA, "entities"),
        )
        self._spent += extracted.usage
        try:
            answer = dict(classified.output)
            answer["title"] = str(answer.get("title", "")).strip()[:200]
            classification = Classification.model_validate(answer)
        except (TypeError, ValueError, ValidationError) as exc:
            raise _BadAnswer(f"the classifier's answer does not fit its schema: {exc}") from None
        try:
            raw = RawEntities.model_validate(extracted.output)
        except (TypeError, ValueError, ValidationError) as exc:
            raise _BadAnswer(f"the extractor's answer does not fit its schema: {exc}") from None
        usage = classified.usage + extracted.usage
        analysis = MessageAnalysis(
            message_id=params.message_id,
            workflow_id=workflow.info().workflow_id,
            classification=classification,
            entities=resolve_entities(raw, text=params.text, sent_at=params.sent_at),
            classifier_version=agents.classifier.version,
            extractor_version=agents.extractor.version,
            usage=usage,
        )
        task = task_from_message(analysis, text=params.text, sent_at=params.sent_at)
        task_id = await workflow.execute_activity(
            store_message_analysis,
            StoreAnalysisInput(analysis=analysis, task=task if classification.is_task else None),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=SAVE_RETRY,
            summary=f"store: {classification.category.value}, task={classification.is_task}",
        )
        workflow.set_current_details(
            f"classified {classification.category.value}" + (f", task {task_id}" if task_id else "")
        )
        await record_usage(RUN_KIND_MESSAGE, "succeeded", self._spent, agent_name=agents.classifier.name)
        return MessageOutcome(
            message_id=params.message_id,
            status="classified",
            classification=classification,
            entities=analysis.entities,
            task_id=task_id,
            usage=usage,
        )

    async def _fail(self, reason: str) -> MessageOutcome:
        workflow.set_current_details(f"failed: {reason}")
        await self._progress("failed", reason=reason)
        await record_usage(RUN_KIND_MESSAGE, "failed", self._spent, agent_name=self._params.classifier)
        return MessageOutcome(message_id=self._params.message_id, status="failed", reason=reason)

    async def _progress(
        self, stage: ProgressStage, *, reason: str | None = None, retry_in_s: float | None = None
    ) -> None:
        progress = MessageProgress(
            message_id=self._params.message_id,
            workflow_id=workflow.info().workflow_id,
            stage=stage,
            reason=reason[:2000] if reason else None,
            retry_in_s=retry_in_s,
        )
        await workflow.execute_activity(
            update_message_progress,
            progress,
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=SAVE_RETRY,
            summary=f"message {stage}",
        )
