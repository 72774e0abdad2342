"""The default provider (from LLM_PROVIDER) and the default agents, registered on every start.

`ensure_defaults` is idempotent and safe when two processes (API, launcher) run it at once: the
provider is one row named `default-<kind>` (the unique name decides a race; the loser updates
the winner's row), and each default agent is created only when its name has no version at all
(the unique (name, version) constraint decides a race). So a person's agents and edits are never
overwritten.

Switching providers (say LLM_PROVIDER=local → openai): a default agent whose active version still
points at a previous `default-*` provider follows the new default — it gets a new version with
the same prompt and settings on the new provider and model, activated; the old version stays.
An agent a person moved to a provider of their own stays where it is.
"""

import logging
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import local_model
from core.crypto import decrypt, encrypt
from core.models import Agent, ConnectionStatus, Provider, ProviderKind
from core.settings import Settings

log = logging.getLogger("goalflow.defaults")

DEFAULT_PROVIDER_PREFIX = "default-"


@dataclass(frozen=True)
class DefaultAgent:
    name: str
    system_prompt: str
    max_tokens: int


DEFAULT_AGENTS = (
    DefaultAgent(
        "planner",
        "You plan work as a small DAG of steps that tools and agents carry out, then you write a "
        "short report of what the steps produced.",
        1024,
    ),
    DefaultAgent(
        "summarizer",
        "You summarise the text you are given in a few plain sentences. Say only what the text supports.",
        512,
    ),
    DefaultAgent(
        "classifier",
        # MessageWorkflow asks it for a small JSON classification (migration 0007 moved an
        # untouched first default, which answered one label in 32 tokens, to this).
        "You classify the text you are given. When asked for JSON, answer with exactly that JSON; "
        "otherwise answer with one short label and nothing else.",
        256,
    ),
    DefaultAgent(
        "extractor",
        "You extract the facts the request asks for from the text you are given and answer with them only.",
        512,
    ),
)


@dataclass(frozen=True)
class ProviderDefaults:
    """What LLM_PROVIDER and its variables ask for."""

    kind: ProviderKind
    base_url: str | None
    api_key: str | None
    model: str

    @property
    def name(self) -> str:
        return f"{DEFAULT_PROVIDER_PREFIX}{self.kind.value}"


def wanted_provider(settings: Settings) -> ProviderDefaults | None:
    """The provider the environment configures; None for LLM_PROVIDER=none."""
    match settings.llm_provider:
        case "local":
            return ProviderDefaults(
                ProviderKind.local, local_model.base_url(settings), None, local_model.MODEL_NAME
            )
        case "openai":
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
            return ProviderDefaults(ProviderKind.openai, settings.openai_base_url, key, settings.openai_model)
        case "openrouter":
            key = settings.openrouter_api_key.get_secret_value() if settings.openrouter_api_key else None
            return ProviderDefaults(ProviderKind.openrouter, None, key, settings.openrouter_model)
        case "ollama":
            base = settings.ollama_base_url
            return ProviderDefaults(ProviderKind.ollama, base, None, settings.ollama_model)
    return None


def _stored_key(settings: Settings, provider: Provider) -> str | None:
    if provider.encrypted_api_key is None:
        return None
    try:
        return decrypt(settings, provider.encrypted_api_key)
    except Exception:  # unreadable with today's keys: treat as changed and store it afresh
        return None


async def _ensure_provider(session: AsyncSession, settings: Settings, wanted: ProviderDefaults) -> Provider:
    """The one `default-<kind>` row, created or brought in line with the environment."""
    for attempt in range(2):
        provider = (await session.exec(select(Provider).where(Provider.name == wanted.name))).first()
        if provider is None:
            provider = Provider(name=wanted.name, kind=wanted.kind, base_url=wanted.base_url)
        elif (
            provider.kind == wanted.kind
            and provider.base_url == wanted.base_url
            and provider.is_active
            and _stored_key(settings, provider) == wanted.api_key
        ):
            return provider
        provider.kind = wanted.kind
        provider.base_url = wanted.base_url
        provider.is_active = True
        provider.encrypted_api_key = encrypt(settings, wanted.api_key) if wanted.api_key else None
        provider.api_key_hint = wanted.api_key[-4:] if wanted.api_key else None
        provider.connection_status = ConnectionStatus.unknown
        provider.last_error = None
        session.add(provider)
        try:
            await session.commit()
        except IntegrityError:  # another process inserted it first: update that row instead
            await session.rollback()
            if attempt:
                raise
            continue
        await session.refresh(provider)
        log.info("default provider %s registered (%s)", wanted.name, wanted.kind.value)
        return provider
    raise AssertionError("unreachable")


async def _ensure_agent(
    session: AsyncSession, default: DefaultAgent, provider_id: int, wanted: ProviderDefaults
) -> None:
    """Create the agent when its name has no version; make a previous default follow the new one.

    Takes the provider's id, not the row: a lost race rolls the session back and expires rows.
    """
    query = select(Agent).where(Agent.name == default.name, col(Agent.is_active))
    active = (await session.exec(query)).first()
    if active is None:
        versions = (await session.exec(select(func.count()).where(Agent.name == default.name))).one()
        if versions:
            return  # a person deactivated or replaced it: theirs to manage
        agent = Agent(
            name=default.name,
            version=1,
            is_active=True,
            provider_id=provider_id,
            model=wanted.model,
            system_prompt=default.system_prompt,
            temperature=0.0 if wanted.kind is ProviderKind.local else None,
            max_tokens=default.max_tokens,
        )
    else:
        if active.provider_id == provider_id:
            return
        previous = await session.get(Provider, active.provider_id)
        if previous is None or not previous.name.startswith(DEFAULT_PROVIDER_PREFIX):
            return  # a person chose this provider
        newest = (await session.exec(select(func.max(Agent.version)).where(Agent.name == default.name))).one()
        agent = Agent.model_validate(
            active.model_dump(exclude={"id", "created_at", "updated_at"}),
            update={"version": (newest or 0) + 1, "provider_id": provider_id, "model": wanted.model},
        )
        await session.exec(update(Agent).where(col(Agent.name) == default.name).values(is_active=False))
        agent.is_active = True
    session.add(agent)
    try:
        await session.commit()
    except IntegrityError:  # a concurrent start created or moved it; its row stands
        await session.rollback()


async def ensure_defaults(session: AsyncSession, settings: Settings) -> Provider | None:
    """Register the LLM_PROVIDER provider and the default agents; returns the provider (or None)."""
    wanted = wanted_provider(settings)
    if wanted is None:
        return None
    provider = await _ensure_provider(session, settings, wanted)
    assert provider.id is not None
    provider_id = provider.id
    for default in DEFAULT_AGENTS:
        await _ensure_agent(session, default, provider_id, wanted)
    return await session.get(Provider, provider_id)
