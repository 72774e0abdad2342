"""Real-time events (`WS /api/v1/ws`), kept for a day so a client can reconnect and catch up.

Written in the same transaction as the change they announce (by the API and by activities); on
PostgreSQL the transaction also NOTIFYs every API process (core/events.py).
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from core.models.common import UTCDateTime, json_field, utcnow

EventId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""64-bit on PostgreSQL; SQLite's autoincrement needs INTEGER PRIMARY KEY."""


class LiveEvent(SQLModel, table=True):
    __tablename__ = "live_event"

    id: int | None = Field(default=None, sa_column=Column(EventId, primary_key=True, autoincrement=True))
    type: str = Field(max_length=32)
    data: dict[str, Any] = json_field(default_factory=dict)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True)
    )
