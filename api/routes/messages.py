"""Chat intake: `POST /messages` stores a message and starts its MessageWorkflow."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import IdPath, PageDep, SessionDep, SettingsDep, TemporalDep
from contracts.intake import Category, MessageSource
from core.models import MessageCreate, MessagePublic
from services import messages as service

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_message(
    data: MessageCreate, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> MessagePublic:
    """Store a message (`pending`) and start `message-<id>`, which classifies it."""
    return await service.submit_message(
        session,
        client,
        settings,
        text=data.text,
        source=data.source,
        sender_id=data.sender_id,
        chat_id=data.chat_id,
        sent_at=data.sent_at,
    )


@router.get("")
async def list_messages(
    session: SessionDep,
    page: PageDep,
    category: Category | None = None,
    is_task: bool | None = None,
    source: MessageSource | None = None,
    since: Annotated[datetime | None, Query(description="Arrived at or after (ISO 8601)")] = None,
) -> list[MessagePublic]:
    """Messages, newest first, each with its status, classification and task id."""
    return await service.list_messages(
        session,
        category=category,
        is_task=is_task,
        source=source,
        since=since,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{message_id}")
async def get_message(message_id: IdPath, session: SessionDep) -> MessagePublic:
    """One message: status (pending with its reason, classified, failed), entities, its task."""
    return await service.get_message(session, message_id)
