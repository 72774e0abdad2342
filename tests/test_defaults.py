"""The default provider and agents registered on start (services/defaults.py).

Each test gets its own freshly migrated PostgreSQL database: the defaults are global names
(`planner`, `default-openai`), so they must not share rows with the session database.
"""

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from core.crypto import decrypt
from core.db import session_scope
from core.models import Agent, Provider, ProviderKind
from core.settings import Settings
from services.defaults import DEFAULT_AGENTS, ensure_defaults
from tests.conftest import migrated_database
from tests.fakes.openai_server import FakeOpenAI

DEFAULT_NAMES = sorted(d.name for d in DEFAULT_AGENTS)


@pytest.fixture
def fresh_db(settings: Settings) -> Iterator[str]:
    """Each test on its own database, so "created once" counts only its own rows."""
    with migrated_database("goalflow_defaults") as url:
        yield url


def _settings(base: Settings, url: str, **values: Any) -> Settings:
    for key in ("openai_api_key", "openrouter_api_key"):
        if isinstance(values.get(key), str):
            values[key] = SecretStr(values[key])
    return base.model_copy(update={"database_url": Settings(database_url=url).database_url, **values})


async def _rows(settings: Settings) -> tuple[list[Provider], list[Agent]]:
    async with session_scope(settings) as session:
        providers = list((await session.exec(select(Provider).order_by(col(Provider.id)))).all())
        agents = list((await session.exec(select(Agent).order_by(col(Agent.name), col(Agent.version)))).all())
    return providers, agents


async def _ensure(settings: Settings) -> None:
    async with session_scope(settings) as session:
        await ensure_defaults(session, settings)


async def test_openai_provider_from_env_is_registered_once_with_encrypted_key_and_default_agents_use_it(
    settings: Settings, fresh_db: str, fake_llm: FakeOpenAI
) -> None:
    assert fake_llm.api_key is not None
    env = _settings(
        settings,
        fresh_db,
        llm_provider="openai",
        openai_api_key=fake_llm.api_key,
        openai_model="fake-small",
        openai_base_url=fake_llm.base_url,
    )
    for _ in range(3):
        await _ensure(env)
    providers, agents = await _rows(env)
    assert [(p.name, p.kind) for p in providers] == [("default-openai", ProviderKind.openai)]
    stored = providers[0].encrypted_api_key
    assert stored is not None and fake_llm.api_key not in stored
    assert decrypt(env, stored) == fake_llm.api_key
    assert sorted(a.name for a in agents) == DEFAULT_NAMES
    assert all(a.version == 1 and a.is_active for a in agents)
    assert {(a.provider_id, a.model) for a in agents} == {(providers[0].id, "fake-small")}
    # The model the agents name answers through the provider row (key checked by the fake).
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{providers[0].base_url}/models", headers={"Authorization": f"Bearer {decrypt(env, stored)}"}
        )
    assert response.status_code == 200


async def test_changed_key_updates_the_one_provider_row(settings: Settings, fresh_db: str) -> None:
    first = _settings(settings, fresh_db, llm_provider="openai", openai_api_key="sk-first-1111")
    await _ensure(first)
    await _ensure(first.model_copy(update={"openai_api_key": SecretStr("sk-second-2222")}))
    providers, _ = await _rows(first)
    assert len(providers) == 1
    assert providers[0].api_key_hint == "2222"


async def test_default_agents_are_created_once_even_when_ensure_defaults_runs_concurrently(
    settings: Settings, fresh_db: str
) -> None:
    env = _settings(settings, fresh_db, llm_provider="local")
    await asyncio.gather(*(_ensure(env) for _ in range(4)))
    await _ensure(env)
    providers, agents = await _rows(env)
    assert [(p.name, p.kind, p.base_url) for p in providers] == [
        ("default-local", ProviderKind.local, f"http://127.0.0.1:{env.local_model_port}/v1")
    ]
    assert [(a.name, a.version, a.is_active) for a in agents] == [(n, 1, True) for n in DEFAULT_NAMES]


async def test_a_persons_edit_is_kept_and_defaults_follow_a_new_default_provider(
    settings: Settings, fresh_db: str
) -> None:
    local = _settings(settings, fresh_db, llm_provider="local")
    await _ensure(local)
    async with session_scope(local) as session:
        own = Provider(name="mine", kind=ProviderKind.ollama)
        session.add(own)
        await session.commit()
        await session.refresh(own)
        mine = (await session.exec(select(Agent).where(Agent.name == "classifier"))).one()
        mine.provider_id, mine.system_prompt = own.id or 0, "my own prompt"
        session.add(mine)
        await session.commit()
    await _ensure(local)
    await _ensure(_settings(settings, fresh_db, llm_provider="openai", openai_api_key="sk-x-1234"))
    providers, agents = await _rows(local)
    openai = next(p for p in providers if p.name == "default-openai")
    active = {a.name: a for a in agents if a.is_active}
    assert active["classifier"].system_prompt == "my own prompt"
    assert active["classifier"].version == 1
    for name in ("planner", "summarizer", "extractor"):
        assert (active[name].version, active[name].provider_id) == (2, openai.id)


async def test_llm_provider_none_registers_nothing(settings: Settings, fresh_db: str) -> None:
    env = _settings(settings, fresh_db, llm_provider="none")
    assert await _run_none(env) is None
    assert await _rows(env) == ([], [])


async def _run_none(env: Settings) -> Provider | None:
    async with session_scope(env) as session:
        return await ensure_defaults(session, env)


def test_openai_without_a_key_names_the_missing_variable() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        Settings(llm_provider="openai", openai_api_key=None, _env_file=None)
