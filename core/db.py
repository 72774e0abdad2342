"""Async database engine and sessions (PostgreSQL through psycopg 3, or SQLite)."""

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.settings import Settings
from core.stored_rows import read_json

_engines: dict[str, AsyncEngine] = {}


def get_engine(settings: Settings) -> AsyncEngine:
    """One engine per database URL per process, shared by the API and activities."""
    url = settings.database_url
    if url not in _engines:
        if url.startswith("sqlite"):
            _engines[url] = create_async_engine(
                url, connect_args={"timeout": 30}, json_deserializer=read_json
            )
        else:
            _engines[url] = create_async_engine(
                url, pool_pre_ping=True, pool_size=10, json_deserializer=read_json
            )
    return _engines[url]


async def dispose_engines() -> None:
    """Close every pooled connection (on shutdown, and between test sessions)."""
    for engine in _engines.values():
        await engine.dispose()
    _engines.clear()


def dialect_of(session: AsyncSession) -> str:
    """The session's database dialect ("postgresql" or "sqlite")."""
    return session.bind.dialect.name if session.bind is not None else "postgresql"


def upsert_insert(session: AsyncSession) -> Any:
    """The dialect's `insert` (PostgreSQL's or SQLite's): both have `on_conflict_do_*`."""
    return sqlite_insert if dialect_of(session) == "sqlite" else pg_insert


@asynccontextmanager
async def session_scope(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session for one unit of work; the caller commits."""
    maker = async_sessionmaker(get_engine(settings), class_=AsyncSession, expire_on_commit=False)
    async with maker() as session:
        yield session


async def count_by(
    session: AsyncSession, column: Any, keys: Iterable[str], *, none_as: str | None = None
) -> dict[str, int]:
    """Rows per value of `column`: every key listed (zeros included), NULL counted as `none_as`."""
    counts = dict.fromkeys([*keys, *([none_as] if none_as else [])], 0)
    for value, n in (await session.exec(select(column, func.count()).group_by(column))).all():
        key = none_as if value is None and none_as else str(value)
        counts[key] = counts.get(key, 0) + int(n)
    return counts
