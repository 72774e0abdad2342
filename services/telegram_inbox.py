"""Updates the API's webhook accepted, kept until the bot's dispatcher takes them.

The API answers Telegram as soon as an update is committed here (so a slow command never holds
the webhook, and a bot restart loses nothing); the bot process feeds each update to the same
dispatcher polling would. `update_id` is the key, so Telegram redelivering one is a no-op.
"""

from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from core.models import TelegramUpdate
from core.models.common import utcnow

KEEP = timedelta(days=1)
"""Handled updates are kept this long, so a redelivery after a lost answer is still recognised."""


async def accept(session: AsyncSession, payload: dict[str, Any]) -> bool:
    """Store an update for the bot; False when it was already there."""
    session.add(TelegramUpdate(update_id=int(payload["update_id"]), payload=payload))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def take(session: AsyncSession, *, limit: int = 100) -> list[dict[str, Any]]:
    """The oldest updates not yet taken, marked taken (each is handled at most once)."""
    query = (
        select(TelegramUpdate)
        .where(col(TelegramUpdate.taken).is_(False))
        .order_by(col(TelegramUpdate.update_id))
        .limit(limit)
    )
    rows = list((await session.exec(query)).all())
    if not rows:
        return []
    ids = [row.update_id for row in rows]
    await session.exec(
        update(TelegramUpdate)
        .where(col(TelegramUpdate.update_id).in_(ids), col(TelegramUpdate.taken).is_(False))
        .values(taken=True)
    )
    await session.commit()
    return [row.payload for row in rows]


async def prune(session: AsyncSession) -> None:
    """Forget handled updates older than `KEEP`."""
    cutoff = utcnow() - KEEP
    await session.exec(
        delete(TelegramUpdate).where(col(TelegramUpdate.taken), col(TelegramUpdate.received_at) < cutoff)
    )
    await session.commit()
