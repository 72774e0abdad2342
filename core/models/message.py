"""Chat messages (the intake): what people sent and what the classifier and extractor found.

Processing runs in MessageWorkflow (`message-<id>`); the row records its outcome and, while it
waits for a usable provider, why (`status_reason`).
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, StringConstraints
from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from contracts.intake import MAX_MESSAGE_CHARS, Category, Classification, Entities, MessageSource, Urgency
from core.models.common import UTCDateTime, json_field, updated_at_field, utcnow
from core.models.todo import TodoTaskPublic


class MessageStatus(StrEnum):
    pending = "pending"
    """Not classified yet: being processed, or waiting for a usable provider (`status_reason`)."""
    classified = "classified"
    failed = "failed"


def _id_text(value: Any) -> Any:
    """Telegram and other front ends have integer ids; they are stored as text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ExternalId = Annotated[
    str, BeforeValidator(_id_text), StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
]


class MessageCreate(SQLModel):
    """`POST /messages`: the text and where it came from."""

    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    source: MessageSource = MessageSource.api
    sender_id: ExternalId | None = None
    chat_id: ExternalId | None = None
    sent_at: AwareDatetime | None = None
    """When it was sent, with the sender's UTC offset (dates in the text are read in it);
    default: when it arrives, UTC."""


class Message(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(max_length=MAX_MESSAGE_CHARS)
    source: str = Field(sa_type=String(16), index=True)
    sender_id: str | None = Field(default=None, max_length=64)
    chat_id: str | None = Field(default=None, max_length=64, index=True)
    sent_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    workflow_id: str = Field(default="", max_length=255)
    status: str = Field(default=MessageStatus.pending.value, sa_type=String(16), index=True)
    status_reason: str | None = Field(default=None, max_length=2000)
    category: str | None = Field(default=None, sa_type=String(16), index=True)
    urgency: str | None = Field(default=None, sa_type=String(8))
    is_task: bool | None = Field(default=None, index=True)
    title: str | None = Field(default=None, max_length=200)
    entities: dict[str, Any] | None = json_field(nullable=True)
    classifier_version: int | None = None
    extractor_version: int | None = None
    processed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
    updated_at: datetime = updated_at_field()


class MessagePublic(BaseModel):
    """A message with its processing status, classification, entities and the task it became."""

    id: int
    text: str
    source: MessageSource
    sender_id: str | None
    chat_id: str | None
    sent_at: datetime
    created_at: datetime
    status: MessageStatus
    status_reason: str | None
    workflow_id: str
    classification: Classification | None = None
    entities: Entities | None = None
    task_id: int | None = None
    task: TodoTaskPublic | None = None
    """The task it became (answered by `GET /messages/{id}`; lists carry `task_id` only)."""

    @classmethod
    def of(
        cls, message: Message, *, task_id: int | None = None, task: TodoTaskPublic | None = None
    ) -> "MessagePublic":
        classification = None
        if message.category and message.urgency and message.title is not None and message.is_task is not None:
            classification = Classification(
                title=message.title,
                is_task=message.is_task,
                category=Category(message.category),
                urgency=Urgency(message.urgency),
            )
        return cls(
            id=message.id or 0,
            text=message.text,
            source=MessageSource(message.source),
            sender_id=message.sender_id,
            chat_id=message.chat_id,
            sent_at=message.sent_at,
            created_at=message.created_at,
            status=MessageStatus(message.status),
            status_reason=message.status_reason,
            workflow_id=message.workflow_id,
            classification=classification,
            entities=Entities.model_validate(message.entities) if message.entities is not None else None,
            task_id=task.id if task is not None else task_id,
            task=task,
        )


EVENT_TEXT_CHARS = 500
"""Events carry the start of a message's text; `GET /messages/{id}` has all of it."""


def message_event_data(message: Message, *, task_id: int | None = None) -> dict[str, Any]:
    """The `message` object of message.* events: the public shape, text shortened."""
    public = MessagePublic.of(message, task_id=task_id)
    public.text = public.text[:EVENT_TEXT_CHARS]
    return public.model_dump(mode="json", exclude={"task"})
