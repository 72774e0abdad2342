"""`python -m cli rotate-keys`: old keys can be retired without losing a stored secret."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from core.crypto import decrypt, new_key
from core.db import session_scope
from core.models import Provider
from core.settings import Settings, get_settings
from services.providers import rotate_keys
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

ROOT = Path(__file__).resolve().parent.parent


async def _cli(*args: str, database_url: str, encryption_keys: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "ENCRYPTION_KEYS": encryption_keys}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _use_keys(keys: str) -> None:
    """What the in-process worker's activities read: the environment through get_settings()."""
    os.environ["ENCRYPTION_KEYS"] = keys
    get_settings.cache_clear()


async def _stored_tokens(settings: Settings) -> dict[int, str]:
    async with session_scope(settings) as session:
        rows = await session.exec(select(Provider).where(col(Provider.encrypted_api_key).is_not(None)))
        return {p.id: p.encrypted_api_key for p in rows if p.id is not None and p.encrypted_api_key}


async def test_help_names_the_rotate_keys_command() -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert "rotate-keys" in result.stdout


async def test_rotate_keys_lets_the_old_key_be_retired(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    assert settings.encryption_keys is not None
    k1 = settings.encryption_keys.get_secret_value()
    k2 = new_key()
    provider = await make_provider(api, fake_llm)  # encrypted under K1
    agent = await make_agent(api, provider["id"])
    validate = f"/api/v1/providers/{provider['id']}/validate"
    before = await _stored_tokens(settings)
    try:
        # Under K2 alone the key cannot be read yet: the check below is not vacuous.
        _use_keys(k2)
        refused = (await api.post(validate)).json()
        assert refused["ok"] is False
        assert "cannot be decrypted" in refused["error"]

        result = await _cli("rotate-keys", database_url=settings.database_url, encryption_keys=f"{k2},{k1}")
        assert result.returncode == 0, result.stderr
        assert f"re-encrypted {len(before)} provider API key(s)" in result.stdout
        assert k1 not in result.stdout + result.stderr

        after = await _stored_tokens(settings)
        assert after.keys() == before.keys()
        assert after[provider["id"]] != before[provider["id"]]
        k2_only = settings.model_copy(update={"encryption_keys": SecretStr(k2)})
        assert decrypt(k2_only, after[provider["id"]]) == fake_llm.api_key

        # With only the new key configured, the worker still opens the stored secret.
        _use_keys(k2)
        validated = (await api.post(validate)).json()
        assert validated["ok"] is True, validated
        tested = await api.post(f"/api/v1/agents/{agent['id']}/test", json={"prompt": "rotated"})
        assert tested.status_code == 200, tested.text
        assert tested.json()["output"] == "echo: rotated"
        assert fake_llm.calls(agent["model"])[-1]["headers"]["authorization"] == f"Bearer {fake_llm.api_key}"
    finally:
        # Put every key back under K1 so the rest of the session's tests can read them.
        back = settings.model_copy(update={"encryption_keys": SecretStr(f"{k1},{k2}")})
        async with session_scope(back) as session:
            await rotate_keys(session, back)
        _use_keys(k1)


@pytest.mark.parametrize("keys", ["not-a-fernet-key", ""])
async def test_rotate_keys_with_unusable_keys_fails_without_echoing_them(
    settings: Settings, keys: str
) -> None:
    result = await _cli("rotate-keys", database_url=settings.database_url, encryption_keys=keys)
    assert result.returncode == 1
    assert "ENCRYPTION_KEYS" in result.stderr
    if keys:
        assert keys not in result.stdout + result.stderr
