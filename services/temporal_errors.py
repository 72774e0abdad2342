"""Temporal failures → domain errors, by failure type (never by message text)."""

from collections.abc import Awaitable
from typing import TypeVar

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, FailureError, TimeoutError

from contracts import errors
from services.errors import Conflict, DomainError, Invalid, NotFound, Upstream

T = TypeVar("T")

_BY_TYPE: dict[str, type[DomainError]] = {
    errors.AGENT_NOT_FOUND: NotFound,
    errors.PROVIDER_NOT_FOUND: Invalid,
    errors.PROVIDER_INACTIVE: Conflict,
}


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
