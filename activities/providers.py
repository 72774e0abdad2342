"""Provider connection checks: list the endpoint's models and record the outcome."""

from datetime import UTC, datetime

import openai
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm_models import load_provider_client
from contracts import errors
from contracts.providers import ProviderCheck
from contracts.workflow_names import VALIDATE_PROVIDER_ACTIVITY
from core.db import session_scope
from core.models import ConnectionStatus, Provider
from core.settings import get_settings


def describe_openai_error(exc: openai.OpenAIError) -> str:
    """A message for people that names the status and the provider's own words."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or body.get("error") or exc.message
        if isinstance(detail, dict):
            detail = detail.get("message", str(detail))
        return f"HTTP {exc.status_code}: {detail}"
    return f"{type(exc).__name__}: {exc}"


async def _record(provider_id: int, check: ProviderCheck) -> None:
    async with session_scope(get_settings()) as session:
        row = await session.get(Provider, provider_id)
        if row is not None:
            row.connection_status = ConnectionStatus.ok if check.ok else ConnectionStatus.error
            row.last_error = check.error
            row.last_validated_at = datetime.now(UTC)
            session.add(row)
            await session.commit()


@activity.defn(name=VALIDATE_PROVIDER_ACTIVITY)
async def validate_provider(provider_id: int) -> ProviderCheck:
    """List models with the stored credential; a failure is an answer, not an activity error."""
    try:
        _, client = await load_provider_client(provider_id)
    except ApplicationError as exc:
        if exc.type not in (errors.SECRET_UNREADABLE, errors.PROVIDER_KEY_INVALID):
            raise  # the provider is gone: nothing to record
        # A key no configured ENCRYPTION_KEYS entry opens is this provider's problem to report.
        check = ProviderCheck(ok=False, error=exc.message)
    else:
        try:
            async with client:
                page = await client.models.list()
            check = ProviderCheck(ok=True, models=sorted(m.id for m in page.data))
        except openai.OpenAIError as exc:
            check = ProviderCheck(ok=False, error=describe_openai_error(exc))
    await _record(provider_id, check)
    return check
