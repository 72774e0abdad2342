"""The live progress message of a run started from Telegram: its durable state.

A row holds the chat and message, the run's DAG execution once planned, the counters as of a
stream offset, and the text the message shows. The bot saves counters, offset and text together
after each edit, so after a restart it reads on from that offset (nothing counted twice) and
only edits when the text differs from what the message already shows (nothing repeated).
"""

import contextlib
from collections.abc import Iterable
from typing import Any

from sqlmodel import col, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from core.models import TelegramProgress

TRACKING = "tracking"
REPORTING = "reporting"
DONE = "done"


async def create(
    session: AsyncSession,
    *,
    run_id: str,
    title: str,
    chat_id: int,
    message_id: int,
    started_by: int,
    rendered: str,
) -> TelegramProgress:
    """Remember the message that will follow `run_id`."""
    row = TelegramProgress(
        run_id=run_id,
        title=title[:300],
        chat_id=chat_id,
        message_id=message_id,
        started_by=started_by,
        rendered=rendered,
    )
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return row


async def get(session: AsyncSession, progress_id: int) -> TelegramProgress | None:
    return await session.get(TelegramProgress, progress_id)


async def unfinished(session: AsyncSession) -> list[TelegramProgress]:
    """Every message whose run is still followed (its summary not yet sent)."""
    query = (
        select(TelegramProgress).where(col(TelegramProgress.stage) != DONE).order_by(col(TelegramProgress.id))
    )
    return list((await session.exec(query)).all())


async def save(session: AsyncSession, progress_id: int, **changes: Any) -> None:
    """Write `changes` (counters, offset and text together) in one commit."""
    await session.exec(
        update(TelegramProgress).where(col(TelegramProgress.id) == progress_id).values(**changes)
    )
    await session.commit()


async def origin_chat(session: AsyncSession, workflow_ids: Iterable[str]) -> int | None:
    """The chat that started a run, given the ids an execution goes by (itself, its parent run)."""
    ids = [i for i in workflow_ids if i]
    if not ids:
        return None
    query = (
        select(TelegramProgress)
        .where(or_(col(TelegramProgress.run_id).in_(ids), col(TelegramProgress.execution_id).in_(ids)))
        .order_by(col(TelegramProgress.id))
        .limit(1)
    )
    row = (await session.exec(query)).first()
    return row.chat_id if row is not None else None


async def wait_closed(client: Client, workflow_id: str) -> None:
    """Return once the workflow closed, however it ended (a long poll, no busy loop)."""
    handle = client.get_workflow_handle(workflow_id)
    # Failed, cancelled, terminated or gone: the caller reads how from describe.
    with contextlib.suppress(WorkflowFailureError, RPCError):
        await handle.result()
