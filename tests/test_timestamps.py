"""Timestamps come back timezone-aware on SQLite too, so API answers don't depend on the database."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from core.models import Provider, ProviderKind


async def test_sqlite_reads_back_utc_aware_timestamps(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'ts.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    berlin = timezone(timedelta(hours=1))
    validated = datetime(2026, 11, 22, 10, 0, tzinfo=berlin)
    async with AsyncSession(engine, expire_on_commit=True) as session:
        session.add(Provider(name="p", kind=ProviderKind.ollama, last_validated_at=validated))
        await session.commit()
    async with AsyncSession(engine) as session:
        row = await session.get(Provider, 1)
    await engine.dispose()
    assert row is not None and row.last_validated_at is not None
    assert row.created_at.tzinfo is not None
    assert row.last_validated_at == validated
    assert row.last_validated_at.tzinfo is not None
    assert row.last_validated_at.utcoffset() == UTC.utcoffset(None)
