"""Temporal failures → domain errors, by failure type (never by message text)."""

from collections.abc import Awaitable
from typing import TypeVar

from temporalio.client import WorkflowFailureError, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError, TimeoutError
from temporalio.service import RPCError, RPCStatusCode

from contracts import errors
from core.errors import Conflict, DomainError, Invalid, NotFound, Upstream

T = TypeVar("T")

_BY_TYPE: dict[str, type[DomainError]] = {
    errors.AGENT_NOT_FOUND: NotFound,
    errors.PROVIDER_NOT_FOUND: Invalid,
    errors.PROVIDER_INACTIVE: Conflict,
    errors.PROVIDER_KEY_INVALID: Invalid,
}

_UPDATE_BY_TYPE: dict[str, type[DomainError]] = {
    errors.UNKNOWN_NODE: Invalid,
    errors.INVALID_PATCH: Invalid,
    errors.NODE_NOT_WAITING: Conflict,
    errors.NOT_SUSPENDED_ON_NODE: Conflict,
}
"""Update-rejection types that are not a state conflict; every other rejection is a 409."""


def application_cause(exc: BaseException) -> ApplicationError | None:
    """The innermost ApplicationError in a failure chain."""
    found: ApplicationError | None = None
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ApplicationError):
            found = current
        current = current.cause if isinstance(current, FailureError) else current.__cause__
    return found


def domain_error(exc: WorkflowFailureError, *, workflow_id: str) -> DomainError:
    """The domain error for a failed workflow, naming the workflow so people can look it up."""
    cause = application_cause(exc)
    if cause is None:
        if isinstance(exc.cause, TimeoutError):
            return Upstream(f"workflow {workflow_id} timed out", status_code=504, kind="Timeout")
        return Upstream(f"workflow {workflow_id} failed: {exc.cause}", kind="WorkflowFailed")
    kind = cause.type or "ApplicationError"
    if kind in _BY_TYPE:
        return _BY_TYPE[kind](cause.message)
    return Upstream(f"{cause.message} (workflow {workflow_id})", kind=kind)


async def run_workflow(call: Awaitable[T], *, workflow_id: str) -> T:
    """Await a workflow result, turning its failure into a domain error."""
    try:
        return await call
    except WorkflowFailureError as exc:
        raise domain_error(exc, workflow_id=workflow_id) from None


def rpc_error(exc: RPCError, *, what: str) -> DomainError:
    """The domain error for a failed Temporal RPC about `what`, by gRPC status code."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        return NotFound(f"{what} not found")
    if exc.status == RPCStatusCode.ALREADY_EXISTS:
        return Conflict(f"{what} already exists")
    if exc.status == RPCStatusCode.FAILED_PRECONDITION:
        return Conflict(f"{what}: {exc.message}")
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return Invalid(f"{what}: {exc.message}")
    unavailable = exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return Upstream(
        f"Temporal failed on {what}: {exc.message}",
        status_code=503 if unavailable else 502,
        kind="TemporalUnavailable" if unavailable else "TemporalError",
    )


def update_error(exc: WorkflowUpdateFailedError, *, workflow_id: str) -> DomainError:
    """The domain error for an update the workflow rejected (its validator) or failed.

    Rejections carry the validator's ApplicationError; its type picks the class (an unknown type
    is a request that does not fit the execution's current state: Conflict).
    """
    cause = application_cause(exc)
    if cause is None:
        return Upstream(f"update on {workflow_id} failed: {exc.cause}", kind="UpdateFailed")
    return _UPDATE_BY_TYPE.get(cause.type or "", Conflict)(cause.message)


def query_error(exc: WorkflowQueryFailedError, *, workflow_id: str) -> DomainError:
    """A query the workflow could not answer (no worker, or its code failed)."""
    return Upstream(f"execution {workflow_id} did not answer its query: {exc}", kind="QueryFailed")
