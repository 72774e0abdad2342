"""What the Telegram bot must remember across restarts (and nothing about run state itself).

- `TelegramApproval`: one Approve/Reject prompt for a node waiting in a DAG execution. Its opaque
  `id` is what a button carries (Telegram allows 64 bytes of callback data); the decision is
  claimed here once, so a second press answers "already decided".
- `TelegramWatch`: how far the bot has read each DAG execution's event stream for approvals.
- `TelegramProgress`: the one live progress message of a run started from Telegram, with the
  stream offset its text reflects, so a restart neither loses nor repeats an edit.
- `TelegramUpdate`: updates the API's webhook accepted, waiting for the bot's dispatcher.

Telegram user and chat ids exceed 32 bits, hence BigInteger columns.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.models.common import UTCDateTime, created_at_field, json_field, updated_at_field


def _big() -> Any:
    """A required 64-bit integer column."""
    return Field(sa_column=Column(BigInteger, nullable=False))


class TelegramApproval(SQLModel, table=True):
    __tablename__ = "telegram_approvals"
    __table_args__ = (UniqueConstraint("execution_id", "event_offset", name="uq_telegram_approval_event"),)

    id: str = Field(primary_key=True, max_length=32)
    execution_id: str = Field(max_length=255, index=True)
    node_id: str = Field(max_length=64)
    event_offset: int
    """The stream offset of the `node_waiting_approval` event: one prompt per wait."""
    text: str = Field(default="", max_length=4096)
    """The prompt as sent (run, node, input preview), kept to re-render it once decided."""
    messages: list[list[int]] = json_field(default_factory=list)
    """[chat id, message id] of every copy sent."""
    notified: bool = False
    decision: str | None = Field(default=None, max_length=16)
    """approved | rejected | elsewhere (decided through REST or the CLI) | gone (the wait ended)."""
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = created_at_field()


class TelegramWatch(SQLModel, table=True):
    __tablename__ = "telegram_watches"

    execution_id: str = Field(primary_key=True, max_length=255)
    offset: int = -1
    """The last stream offset handled (-1: none yet)."""
    closed: bool = Field(default=False, index=True)
    updated_at: datetime = updated_at_field()


class TelegramProgress(SQLModel, table=True):
    __tablename__ = "telegram_progress"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=255, index=True)
    title: str = Field(default="", max_length=300)
    chat_id: int = _big()
    message_id: int = _big()
    started_by: int = _big()
    execution_id: str | None = Field(default=None, max_length=255, index=True)
    """The run's DAG execution, once planned."""
    offset: int = -1
    """The last event offset the saved counters include."""
    done: int = 0
    total: int = 0
    failed: int = 0
    running: list[str] = json_field(default_factory=list)
    waiting: list[str] = json_field(default_factory=list)
    phase: str = Field(default="starting", max_length=32)
    rendered: str = Field(default="", max_length=4096)
    """The text the message shows now (the last edit that went through)."""
    stage: str = Field(default="tracking", max_length=16, index=True)
    """tracking → reporting (final text edited in) → done (summary and report sent)."""
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class TelegramUpdate(SQLModel, table=True):
    __tablename__ = "telegram_updates"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    payload: dict[str, Any] = json_field(default_factory=dict)
    taken: bool = Field(default=False, index=True)
    received_at: datetime = created_at_field()
