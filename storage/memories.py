"""Agent memories: add, search, list, delete.

Used by the `remember` / `recall` tools and by the `/agents/{name}/memories` routes. Every
function takes an open session and commits its own writes. Search is PostgreSQL full-text search
(English stemming, ranked) where the database is PostgreSQL, and a case-insensitive substring
match of every query word elsewhere (SQLite).
"""

from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnClause, func, literal_column, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.errors import Invalid, NotFound
from core.models.memory import Memory, MemoryCreate

FTS_CONFIG: ColumnClause[Any] = literal_column("'english'::regconfig")
"""A literal, not a parameter, so the query's expression matches the GIN index (migration 0002)."""
MAX_QUERY_WORDS = 20


async def add_memory(
    session: AsyncSession,
    *,
    agent_name: str,
    content: str,
    tags: list[str] | None = None,
    commit: bool = True,
) -> Memory:
    """Store one memory for an agent name; Invalid unless content and tags pass `MemoryCreate`.

    `commit=False` only flushes (the id is known), so the `remember` tool can commit the memory
    together with its side-effect record (`activities.idempotency.once`).
    """
    try:
        data = MemoryCreate.model_validate({"content": content, "tags": tags or []})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise Invalid(f"invalid memory: {problems}") from None
    memory = Memory(agent_name=agent_name, content=data.content, tags=data.tags)
    session.add(memory)
    if not commit:
        await session.flush()
        return memory
    await session.commit()
    await session.refresh(memory)
    return memory


async def search_memories(
    session: AsyncSession, *, agent_name: str, query: str, limit: int = 5
) -> list[Memory]:
    """An agent's memories that match `query`, best first (then newest); an empty query lists."""
    words = query.split()[:MAX_QUERY_WORDS]
    if not words:
        return await list_memories(session, agent_name=agent_name, limit=limit, offset=0)
    base = select(Memory).where(Memory.agent_name == agent_name)
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        vector = func.to_tsvector(FTS_CONFIG, col(Memory.content))
        tsquery = func.plainto_tsquery(FTS_CONFIG, " ".join(words))
        # Full-text first; a literal substring still finds what stemming cannot (codes, ids).
        stmt = base.where(
            or_(vector.op("@@")(tsquery), col(Memory.content).icontains(query, autoescape=True))
        ).order_by(func.ts_rank(vector, tsquery).desc(), col(Memory.created_at).desc())
    else:
        stmt = base
        for word in words:
            stmt = stmt.where(col(Memory.content).icontains(word, autoescape=True))
        stmt = stmt.order_by(col(Memory.created_at).desc(), col(Memory.id).desc())
    return list((await session.exec(stmt.limit(limit))).all())


async def list_memories(
    session: AsyncSession, *, agent_name: str, limit: int = 50, offset: int = 0
) -> list[Memory]:
    """An agent's memories, newest first."""
    stmt = (
        select(Memory)
        .where(Memory.agent_name == agent_name)
        .order_by(col(Memory.created_at).desc(), col(Memory.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.exec(stmt)).all())


async def delete_memory(session: AsyncSession, memory_id: int) -> None:
    """Delete one memory by id, or NotFound."""
    memory = await session.get(Memory, memory_id)
    if memory is None:
        raise NotFound(f"memory {memory_id} not found")
    await session.delete(memory)
    await session.commit()
