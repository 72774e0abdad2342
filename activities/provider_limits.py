"""Every model request to a provider goes through `LimitedModel`: it waits for the provider's
capacity (its limits hold across all workers: `storage/provider_limits.py`), reports the wait
as its activity's heartbeat details, charges the tokens the answer used, and turns a provider's
Retry-After into Temporal's next-retry delay.

`activities/llm_models.py` wraps every provider model in it, so both agent modes go through it:
`agent_request` (one activity per run) and the model-request activities of pydantic-ai's agent
loop under `TemporalDurability` (and nested agents inside the `run_agent` tool).

Waiting shows in the node's status: the waiting activity heartbeats a `ProviderWait`, which the
status service reads from the workflow's pending activities. pydantic-ai's background heartbeat
(`activities/heartbeat.py`) beats without details, and Temporal keeps only the newest heartbeat's
details, so `ProviderWaitInterceptor` (registered on the worker) puts the wait into every
heartbeat of a waiting activity.
"""

import asyncio
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from openai import APIStatusError
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse
from pydantic_ai.models import ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.agent_options import FINAL_MODEL_ERRORS, classify_model_error
from contracts import errors
from contracts.provider_limits import ProviderWait
from core.db import session_scope
from core.models import Provider
from core.settings import get_settings
from storage import provider_limits as store

log = logging.getLogger(__name__)

WORKER = f"{socket.gethostname()}:{os.getpid()}"
POLL_FIRST = 0.2
POLL_MAX = 1.0
"""A request blocked by concurrency or by the queue asks again at growing intervals up to this;
one blocked by a per-minute window sleeps until the window frees up (renewing its place)."""
RENEW_EVERY = store.LEASE / 3


# --- heartbeat details while waiting -------------------------------------------------------------


@dataclass
class _ActivityLimits:
    """Per activity execution: what its heartbeats carry while it waits, and its request count
    (which names each request across the activity's attempts)."""

    wait: dict[str, Any] | None = None
    requests: int = 0


_CURRENT: ContextVar[_ActivityLimits | None] = ContextVar("goalflow_provider_limits", default=None)


class ProviderWaitInterceptor(Interceptor):
    """Worker interceptor: while an activity waits for provider capacity, each of its heartbeats
    carries the wait, including pydantic-ai's background beats that carry nothing."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor) -> None:
        super().__init__(next)
        self._limits = _ActivityLimits()

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_Outbound(outbound, self._limits))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        token = _CURRENT.set(self._limits)
        try:
            return await super().execute_activity(input)
        finally:
            _CURRENT.reset(token)


class _Outbound(ActivityOutboundInterceptor):
    def __init__(self, next: ActivityOutboundInterceptor, limits: _ActivityLimits) -> None:
        super().__init__(next)
        self._limits = limits

    def heartbeat(self, *details: Any) -> None:
        if not details and self._limits.wait is not None:
            details = (self._limits.wait,)
        super().heartbeat(*details)


def _can_heartbeat() -> bool:
    return activity.in_activity() and not activity.info().is_local


def _show(limits: _ActivityLimits | None, wait: ProviderWait | None) -> None:
    """Heartbeat the wait now (or its end); with the interceptor, every later beat repeats it."""
    detail = wait.detail() if wait is not None else None
    if limits is not None:
        if limits.wait == detail:
            return
        limits.wait = detail
    if _can_heartbeat():
        activity.heartbeat(*([detail] if detail is not None else []))


# --- acquiring capacity --------------------------------------------------------------------------


def limited(provider: Provider) -> bool:
    """Whether any limit is set (only then does a request touch the limit tables)."""
    return any(
        value is not None
        for value in (provider.max_concurrency, provider.requests_per_minute, provider.tokens_per_minute)
    )


def _holder(limits: _ActivityLimits | None) -> str:
    """The name of this request across its activity's attempts: the n-th request of activity X of
    run Y. A retried attempt finds the row its dead predecessor left (queue place, slot)."""
    if limits is None or not activity.in_activity():
        return uuid.uuid4().hex
    limits.requests += 1
    info = activity.info()
    key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}#{limits.requests}"
    return key if len(key) <= 600 else hashlib.sha256(key.encode()).hexdigest()


def _check_deadline(reserve: timedelta) -> None:
    """Give up this attempt's wait when too little of its start-to-close time is left for the
    request itself; the retry keeps the request's place in the queue."""
    if not activity.in_activity():
        return
    info = activity.info()
    if info.start_to_close_timeout is None:
        return
    left = info.started_time + info.start_to_close_timeout - datetime.now(UTC)
    if left < min(reserve, info.start_to_close_timeout / 2):
        raise ApplicationError(
            "waited for provider capacity until this attempt's deadline",
            type=errors.PROVIDER_UNAVAILABLE,
            next_retry_delay=timedelta(seconds=1),
        )


@dataclass
class Slot:
    """An admitted request; `used` is what the answer reported (None: charge the estimate)."""

    lease_id: str | None
    used: int | None = None


async def _admit(
    provider: Provider, holder: str, estimate: int, reserve: timedelta, queued: list[str]
) -> str:
    """Wait until the provider admits this request; its lease id. `queued` receives the lease id
    as soon as there is one, so a cancelled wait can leave the queue."""
    assert provider.id is not None
    limits = _CURRENT.get()
    settings = get_settings()
    since: datetime | None = None
    delay = POLL_FIRST
    try:
        while True:
            async with session_scope(settings) as session:
                admission = await store.try_admit(
                    session, provider_id=provider.id, holder=holder, worker=WORKER, estimate=estimate
                )
            queued[:] = [admission.lease_id]
            if admission.admitted:
                return admission.lease_id
            since = since or datetime.now(UTC)
            assert admission.blocked_by is not None
            wait = ProviderWait(
                provider_id=provider.id,
                provider=provider.name,
                blocked_by=admission.blocked_by,
                ahead=admission.ahead,
                since=since,
            )
            _show(limits, wait)
            _check_deadline(reserve)
            if admission.retry_in is not None:
                pause = min(max(admission.retry_in, POLL_FIRST), RENEW_EVERY.total_seconds())
            else:
                pause, delay = delay, min(delay * 2, POLL_MAX)
            await asyncio.sleep(pause)
    finally:
        if since is not None:
            _show(limits, None)


async def _renew_forever(lease_id: str) -> None:
    settings = get_settings()
    while True:
        await asyncio.sleep(RENEW_EVERY.total_seconds())
        try:
            async with session_scope(settings) as session:
                await store.renew(session, lease_id)
        except Exception:  # a database blip: the next renewal, well inside the lease, may pass
            log.warning("could not renew provider lease %s", lease_id, exc_info=True)


async def _release(lease_id: str, *, admitted: bool, used: int | None) -> None:
    async with session_scope(get_settings()) as session:
        if admitted:
            await store.finish(session, lease_id, tokens=used)
        else:
            await store.withdraw(session, lease_id)


@asynccontextmanager
async def provider_capacity(provider: Provider, *, estimate: int, reserve: timedelta) -> AsyncIterator[Slot]:
    """Hold a place within the provider's limits for one request (nothing to do without limits)."""
    if not limited(provider):
        yield Slot(lease_id=None)
        return
    queued: list[str] = []
    try:
        lease_id = await _admit(provider, _holder(_CURRENT.get()), estimate, reserve, queued)
    except asyncio.CancelledError:
        if queued:  # leave the queue now rather than when the place's lease lapses
            await asyncio.shield(_release(queued[0], admitted=False, used=None))
        raise
    slot = Slot(lease_id=lease_id)
    renewing = asyncio.create_task(_renew_forever(lease_id))
    try:
        yield slot
    finally:
        renewing.cancel()
        with suppress(asyncio.CancelledError):
            await renewing
        await asyncio.shield(_release(lease_id, admitted=True, used=slot.used))


# --- the model wrapper ---------------------------------------------------------------------------


def prompt_chars(messages: list[ModelMessage]) -> int:
    """Characters of what a request sends (instructions, prompts, tool results, earlier answers)."""
    total = 0
    for message in messages:
        if isinstance(message, ModelRequest):
            total += len(message.instructions or "")
            for part in message.parts:
                content = getattr(part, "content", "")
                total += len(content) if isinstance(content, str) else len(str(content))
        else:
            for response_part in message.parts:
                total += len(
                    str(getattr(response_part, "content", "") or getattr(response_part, "args", "") or "")
                )
    return total


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait (Retry-After / retry-after-ms), if it said."""
    if isinstance(exc, ModelAPIError) and exc.retry_after is not None:
        return exc.retry_after
    headers: Any = exc.headers if isinstance(exc, ModelHTTPError) else None
    if headers is None and isinstance(exc.__cause__, APIStatusError):
        headers = exc.__cause__.response.headers
    raw = headers.get("retry-after") if headers is not None else None
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def retry_after_error(exc: BaseException) -> ApplicationError | None:
    """A retryable model error the provider gave a Retry-After: the next attempt waits exactly
    that long instead of the retry policy's backoff."""
    if isinstance(exc, FINAL_MODEL_ERRORS):
        return None
    seconds = retry_after(exc)
    classified = classify_model_error(exc)
    if seconds is None or classified is None:
        return None
    kind, message = classified
    return ApplicationError(
        f"{message} (retrying in {seconds:g} s, as the provider asked)",
        type=kind,
        next_retry_delay=timedelta(seconds=seconds),
    )


@contextmanager
def _provider_delays() -> Iterator[None]:
    """A model error the provider gave a Retry-After leaves as `retry_after_error`'s error."""
    try:
        yield
    except ModelAPIError as exc:
        delayed = retry_after_error(exc)
        if delayed is None:
            raise
        raise delayed from None  # its message says it all; a cause chain outgrows last_failure


class LimitedModel(WrapperModel):
    """A provider's model whose every request stays within the provider's limits."""

    def __init__(self, wrapped: Any, *, provider: Provider, reserve: timedelta) -> None:
        super().__init__(wrapped)
        self._row = provider  # not `provider`: that is the wrapped model's pydantic-ai provider
        self._reserve = reserve

    def _estimate(self, messages: list[ModelMessage], model_settings: ModelSettings | None) -> int:
        max_tokens = (model_settings or {}).get("max_tokens")
        return store.estimate_tokens(prompt_chars(messages), max_tokens)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        estimate = self._estimate(messages, model_settings)
        async with provider_capacity(self._row, estimate=estimate, reserve=self._reserve) as slot:
            with _provider_delays():
                response = await super().request(messages, model_settings, model_request_parameters)
            slot.used = response.usage.total_tokens
        return response

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: Any = None,
    ) -> AsyncIterator[StreamedResponse]:
        estimate = self._estimate(messages, model_settings)
        async with provider_capacity(self._row, estimate=estimate, reserve=self._reserve) as slot:
            with _provider_delays():
                async with super().request_stream(
                    messages, model_settings, model_request_parameters, run_context
                ) as stream:
                    yield stream
            slot.used = stream.get().usage.total_tokens
