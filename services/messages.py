"""Chat intake: a message is stored and MessageWorkflow (`message-<id>`) classifies it.

The one entry point for every front end (REST, the Telegram bot, the Web App) is
`submit_message`; the workflow is started by name, so this module stays below `workflows/`.
"""

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from contracts.intake import RUN_KIND_MESSAGE, Category, MessageInput, MessageOutcome, MessageSource
from contracts.search import search_attributes
from contracts.workflow_names import MESSAGE_WORKFLOW
from core.db import count_by
from core.errors import NotFound
from core.events import MESSAGE_CREATED, publish
from core.models import Message, MessageCreate, MessagePublic, TodoTask, TodoTaskPublic
from core.models.common import utcnow
from core.models.message import message_event_data
from core.settings import Settings
from services.temporal_errors import rpc_error


def workflow_id_of(message_id: int) -> str:
    """The readable workflow id of a message's processing (SPEC §5)."""
    return f"message-{message_id}"


async def submit_message(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    *,
    text: str,
    source: MessageSource | str = MessageSource.api,
    sender_id: str | int | None = None,
    chat_id: str | int | None = None,
    sent_at: datetime | None = None,
) -> MessagePublic:
    """Store a message (status `pending`) and start its MessageWorkflow; publishes
    `message.created`. Raises pydantic's ValidationError for bad input (nothing stored) and the
    domain error of a Temporal failure (nothing stored either: the row is committed only once
    the workflow has started). Processing needs no worker right now: a message waits durably."""
    data = MessageCreate.model_validate(
        {"text": text, "source": source, "sender_id": sender_id, "chat_id": chat_id, "sent_at": sent_at}
    )
    sent = data.sent_at or utcnow()
    message = Message(
        text=data.text,
        source=data.source.value,
        sender_id=data.sender_id,
        chat_id=data.chat_id,
        sent_at=sent,
    )
    session.add(message)
    await session.flush()
    assert message.id is not None
    message.workflow_id = workflow_id_of(message.id)
    await publish(session, MESSAGE_CREATED, {"message": message_event_data(message)})
    try:
        await client.start_workflow(
            MESSAGE_WORKFLOW,
            MessageInput(message_id=message.id, text=data.text, sent_at=sent),
            id=message.workflow_id,
            task_queue=settings.task_queue,
            search_attributes=search_attributes(run_kind=RUN_KIND_MESSAGE),
            static_summary=f"Message {message.id}: {data.text[:120]}",
            # Only a database reset reuses an id; the stale run then makes way.
            id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
        )
    except RPCError as exc:
        await session.rollback()
        raise rpc_error(exc, what="starting the message's workflow") from None
    await session.commit()
    return MessagePublic.of(message)


async def get_message(session: AsyncSession, message_id: int) -> MessagePublic:
    """A message with its classification, entities, processing status and the task it became."""
    message = await session.get(Message, message_id)
    if message is None:
        raise NotFound(f"message {message_id} not found")
    task = (await session.exec(select(TodoTask).where(TodoTask.message_id == message_id))).first()
    return MessagePublic.of(message, task=TodoTaskPublic.of(task) if task is not None else None)


async def list_messages(
    session: AsyncSession,
    *,
    category: Category | None = None,
    is_task: bool | None = None,
    source: MessageSource | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[MessagePublic]:
    """Messages, newest first, each with the id of the task it became; `since` by arrival."""
    query: Any = select(Message, TodoTask.id).outerjoin(TodoTask, col(TodoTask.message_id) == Message.id)
    if category is not None:
        query = query.where(Message.category == category.value)
    if is_task is not None:
        query = query.where(Message.is_task == is_task)
    if source is not None:
        query = query.where(Message.source == source.value)
    if since is not None:
        query = query.where(col(Message.created_at) >= since)
    query = query.order_by(col(Message.id).desc()).limit(limit).offset(offset)
    rows = (await session.exec(query)).all()
    return [MessagePublic.of(message, task_id=task_id) for message, task_id in rows]


async def count_by_category(session: AsyncSession) -> dict[str, int]:
    """Classified messages per category (every category listed), plus `unclassified`."""
    return await count_by(session, Message.category, (c.value for c in Category), none_as="unclassified")


async def message_outcome(client: Client, message_id: int) -> MessageOutcome | None:
    """Wait for a message's processing to end: its outcome (classified, with the task id, or
    failed with the reason). It may wait long while no provider is usable: bound it with
    `asyncio.timeout`. None when the workflow failed or is unknown."""
    handle = client.get_workflow_handle(workflow_id_of(message_id), result_type=MessageOutcome)
    try:
        return await handle.result()
    except (WorkflowFailureError, RPCError):
        return None
