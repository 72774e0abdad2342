"""Async database engine and sessions (PostgreSQL through psycopg 3, or SQLite)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from core.settings import Settings

_engines: dict[str, AsyncEngine] = {}


def get_engine(settings: Settings) -> AsyncEngine:
    """One engine per database URL per process, shared by the API and activities."""
    url = settings.database_url
    if url not in _engines:
        if url.startswith("sqlite"):
            _engines[url] = create_async_engine(url, connect_args={"timeout": 30})
        else:
            _engines[url] = create_async_engine(url, pool_pre_ping=True, pool_size=10)
    return _engines[url]


async def dispose_engines() -> None:
    """Close every pooled connection (on shutdown, and between test sessions)."""
    for engine in _engines.values():
        await engine.dispose()
    _engines.clear()


@asynccontextmanager
async def session_scope(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session for one unit of work; the caller commits."""
    maker = async_sessionmaker(get_engine(settings), class_=AsyncSession, expire_on_commit=False)
    async with maker() as session:
        yield session
