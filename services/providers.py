"""Provider management: the one place that encrypts keys and decides what may change."""

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import ActivityFailureError, Client
from temporalio.common import RetryPolicy

from contracts import errors
from contracts.providers import ProviderCheck
from contracts.workflow_names import VALIDATE_PROVIDER_ACTIVITY
from core.crypto import check_keys, encrypt, rotate
from core.errors import Conflict, Invalid, NotFound, Upstream
from core.models import Agent, ConnectionStatus, McpServer, Provider, ProviderCreate, ProviderUpdate
from core.models.provider import check_base_url
from core.settings import Settings
from services.ids import short_id
from services.temporal_errors import application_cause

VALIDATE_TIMEOUT = timedelta(seconds=30)
VALIDATE_RETRY = RetryPolicy(maximum_attempts=3)
"""A check answers a person waiting on it: a few attempts (a DB blip), never an endless retry."""


def _key_hint(api_key: str) -> str:
    return api_key[-4:]


async def _ensure_unique_name(session: AsyncSession, name: str, *, exclude_id: int | None = None) -> None:
    query = select(Provider.id).where(Provider.name == name)
    if exclude_id is not None:
        query = query.where(Provider.id != exclude_id)
    if (await session.exec(query)).first() is not None:
        raise Conflict(f"a provider named {name!r} already exists")


async def get_provider(session: AsyncSession, provider_id: int) -> Provider:
    """The provider, or NotFound."""
    provider = await session.get(Provider, provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id} not found")
    return provider


async def list_providers(session: AsyncSession, *, limit: int, offset: int) -> list[Provider]:
    """Providers in creation order."""
    query = select(Provider).order_by(col(Provider.id)).limit(limit).offset(offset)
    return list((await session.exec(query)).all())


async def create_provider(session: AsyncSession, settings: Settings, data: ProviderCreate) -> Provider:
    """Store a provider; its key is encrypted before it reaches the session."""
    await _ensure_unique_name(session, data.name)
    provider = Provider.model_validate(data, update={"api_key": None})
    if data.api_key is not None:
        secret = data.api_key.get_secret_value()
        provider.encrypted_api_key = encrypt(settings, secret)
        provider.api_key_hint = _key_hint(secret)
    session.add(provider)
    await session.commit()
    await session.refresh(provider)
    return provider


async def update_provider(
    session: AsyncSession, settings: Settings, provider_id: int, data: ProviderUpdate
) -> Provider:
    """Patch a provider; a changed endpoint or key resets its connection status."""
    provider = await get_provider(session, provider_id)
    changes = data.model_dump(exclude_unset=True, exclude={"api_key"})
    nulled = sorted(k for k in ("name", "kind", "is_active") if k in changes and changes[k] is None)
    if nulled:  # `base_url` and `api_key` may be removed; these may not
        raise Invalid(f"{', '.join(nulled)} cannot be null")
    if "name" in changes:
        await _ensure_unique_name(session, changes["name"], exclude_id=provider_id)
    try:  # the patch alone is valid; the provider it produces must be too
        check_base_url(changes.get("kind", provider.kind), changes.get("base_url", provider.base_url))
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    provider.sqlmodel_update(changes)
    if "api_key" in data.model_fields_set:
        if data.api_key is None:
            provider.encrypted_api_key = provider.api_key_hint = None
        else:
            secret = data.api_key.get_secret_value()
            provider.encrypted_api_key = encrypt(settings, secret)
            provider.api_key_hint = _key_hint(secret)
    if {"api_key", "base_url", "kind"} & data.model_fields_set:
        provider.connection_status = ConnectionStatus.unknown
        provider.last_error = None
    session.add(provider)
    await session.commit()
    await session.refresh(provider)
    return provider


async def delete_provider(session: AsyncSession, provider_id: int) -> None:
    """Delete a provider that no agent version uses."""
    provider = await get_provider(session, provider_id)
    users = (
        await session.exec(select(func.count()).select_from(Agent).where(Agent.provider_id == provider_id))
    ).one()
    if users:
        raise Conflict(f"provider {provider_id} is used by {users} agent version(s)")
    await session.delete(provider)
    await session.commit()


async def validate_connection(
    session: AsyncSession, client: Client, settings: Settings, provider_id: int
) -> tuple[Provider, ProviderCheck]:
    """Run the validation activity (a standalone Temporal activity) and reload the provider."""
    await get_provider(session, provider_id)
    try:
        check = await client.execute_activity(
            VALIDATE_PROVIDER_ACTIVITY,
            provider_id,
            id=f"provider-validate-{provider_id}-{short_id()}",
            task_queue=settings.task_queue,
            start_to_close_timeout=VALIDATE_TIMEOUT,
            schedule_to_close_timeout=VALIDATE_TIMEOUT * 3,
            retry_policy=VALIDATE_RETRY,
            summary=f"validate provider {provider_id}",
            result_type=ProviderCheck,
        )
    except ActivityFailureError as exc:
        cause = application_cause(exc)
        if cause is not None and cause.type == errors.PROVIDER_NOT_FOUND:
            raise NotFound(cause.message) from None
        kind = cause.type if cause is not None and cause.type else "ValidationFailed"
        raise Upstream(f"provider {provider_id} validation failed ({kind})", kind=kind) from None
    session.expire_all()
    return await get_provider(session, provider_id), check


async def rotate_keys(session: AsyncSession, settings: Settings) -> int:
    """Re-encrypt every stored secret (provider keys, MCP servers' env and headers) with the newest
    ENCRYPTION_KEYS entry; returns how many provider keys."""
    check_keys(settings)  # refuse unusable keys even when there is nothing to rotate
    rows = (await session.exec(select(Provider).where(col(Provider.encrypted_api_key).is_not(None)))).all()
    for provider in rows:
        assert provider.encrypted_api_key is not None
        provider.encrypted_api_key = rotate(settings, provider.encrypted_api_key)
        session.add(provider)
    for server in (await session.exec(select(McpServer))).all():  # MCP servers' env and headers
        for attribute in ("encrypted_env", "encrypted_headers"):
            if (token := getattr(server, attribute)) is not None:
                setattr(server, attribute, rotate(settings, token))
        session.add(server)
    await session.commit()
    return len(rows)
