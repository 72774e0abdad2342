"""LLM providers: CRUD and connection validation. Keys are write-only."""

from fastapi import APIRouter, status
from pydantic import BaseModel

from api.deps import IdPath, PageDep, SessionDep, SettingsDep, TemporalDep
from core.models import ProviderCreate, ProviderPublic, ProviderUpdate
from services import providers as service

router = APIRouter(prefix="/api/v1/providers", tags=["providers"])


class ProviderValidation(BaseModel):
    provider: ProviderPublic
    ok: bool
    models: list[str]
    error: str | None


@router.get("")
async def list_providers(session: SessionDep, page: PageDep) -> list[ProviderPublic]:
    """All providers, without their keys."""
    rows = await service.list_providers(session, limit=page.limit, offset=page.offset)
    return [ProviderPublic.of(p) for p in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_provider(data: ProviderCreate, session: SessionDep, settings: SettingsDep) -> ProviderPublic:
    """Store a provider; the API key is encrypted at rest and never answered. Its limits
    (`max_concurrency`, `requests_per_minute`, `tokens_per_minute`) hold across every run and worker."""
    return ProviderPublic.of(await service.create_provider(session, settings, data))


@router.get("/{provider_id}")
async def get_provider(provider_id: IdPath, session: SessionDep) -> ProviderPublic:
    """One provider."""
    return ProviderPublic.of(await service.get_provider(session, provider_id))


@router.patch("/{provider_id}")
async def update_provider(
    provider_id: IdPath, data: ProviderUpdate, session: SessionDep, settings: SettingsDep
) -> ProviderPublic:
    """Change fields; `"api_key": null` removes the key, a limit set to null removes that limit."""
    return ProviderPublic.of(await service.update_provider(session, settings, provider_id, data))


@router.delete("/{provider_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_provider(provider_id: IdPath, session: SessionDep) -> None:
    """Delete a provider no agent uses."""
    await service.delete_provider(session, provider_id)


@router.post("/{provider_id}/validate")
async def validate_provider(
    provider_id: IdPath, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> ProviderValidation:
    """List the endpoint's models through an activity and record the connection status."""
    provider, check = await service.validate_connection(session, client, settings, provider_id)
    return ProviderValidation(provider=ProviderPublic.of(provider), **check.model_dump())
