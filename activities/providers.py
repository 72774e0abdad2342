"""Provider connection checks: list the endpoint's models and record the outcome."""

from datetime import UTC, datetime

import openai
from pydantic import BaseModel
from temporalio import activity

from activities.llm import load_provider_client
from core.db import session_scope
from core.models import ConnectionStatus, Provider
from core.settings import get_settings


class ProviderCheck(BaseModel):
    """Outcome of one validation: the models the endpoint serves, or why it failed."""

    ok: bool
    models: list[str] = []
    error: str | None = None


def describe_openai_error(exc: openai.OpenAIError) -> str:
    """A message for people that names the status and the provider's own words."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or body.get("error") or exc.message
        if isinstance(detail, dict):
            detail = detail.get("message", str(detail))
        return f"HTTP {exc.status_code}: {detail}"
    return f"{type(exc).__name__}: {exc}"


@activity.defn
async def validate_provider(provider_id: int) -> ProviderCheck:
    """List models with the stored credential; a failure is an answer, not an activity error."""
    provider, client = await load_provider_client(provider_id)
    try:
        async with client:
            page = await client.models.list()
        check = ProviderCheck(ok=True, models=sorted(m.id for m in page.data))
    except openai.OpenAIError as exc:
        check = ProviderCheck(ok=False, error=describe_openai_error(exc))
    async with session_scope(get_settings()) as session:
        row = await session.get(Provider, provider.id)
        if row is not None:
            row.connection_status = ConnectionStatus.ok if check.ok else ConnectionStatus.error
            row.last_error = check.error
            row.last_validated_at = datetime.now(UTC)
            session.add(row)
            await session.commit()
    return check
