"""Publishing real-time events: one row in `live_event`, written in the caller's transaction.

On PostgreSQL the same transaction runs `pg_notify`, so every API process LISTENing on
`EVENTS_CHANNEL` gets the event when (and only if) the change it announces commits; on SQLite the
API processes poll the table. Used by services (API side) and activities (worker side) alike.
"""

import json
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from core.models.live_event import LiveEvent

EVENTS_CHANNEL = "goalflow_events"
MAX_NOTIFY_BYTES = 7000
"""PostgreSQL caps a NOTIFY payload at 8000 bytes; a larger event is announced by id only."""

MESSAGE_CREATED = "message.created"
MESSAGE_CLASSIFIED = "message.classified"
TASK_CREATED = "task.created"
TASK_UPDATED = "task.updated"
RUN_PROGRESS = "run.progress"
NODE_OUTPUT_DELTA = "node.output_delta"
"""An agent's text as it is written (activities/live_output.py)."""
EVENT_TYPES = (
    MESSAGE_CREATED,
    MESSAGE_CLASSIFIED,
    TASK_CREATED,
    TASK_UPDATED,
    RUN_PROGRESS,
    NODE_OUTPUT_DELTA,
)


def event_json(event: LiveEvent) -> dict[str, Any]:
    """What a WebSocket client receives: `{"id", "type", "at", "data"}`."""
    return {"id": event.id, "type": event.type, "at": event.created_at.isoformat(), "data": event.data}


async def publish(session: AsyncSession, event_type: str, data: dict[str, Any]) -> LiveEvent:
    """Add the event to the session's transaction (the caller commits). `data` must be JSON-ready."""
    event = LiveEvent(type=event_type, data=data)
    session.add(event)
    await session.flush()
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        payload = json.dumps(event_json(event), ensure_ascii=False)
        if len(payload.encode()) > MAX_NOTIFY_BYTES:
            payload = json.dumps({"id": event.id})
        await session.exec(
            text("SELECT pg_notify(:channel, :payload)").bindparams(  # type: ignore[call-overload]
                channel=EVENTS_CHANNEL, payload=payload
            )
        )
    return event
