"""`WS /api/v1/ws`: real-time events (message.created, message.classified, task.created,
task.updated, run.progress) as JSON, from every API and worker process (services/realtime.py).

Authenticated with the API token before the socket is accepted (refused with 403 otherwise):
`Authorization: Bearer <token>`, or — browsers cannot set headers — the subprotocols
`bearer, <token>` (answered `bearer`), or `?token=<token>` (kept out of the access log).
"""

import asyncio
import contextlib
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect, status

from core.logs import redact_access_log
from core.settings import Settings
from services.realtime import Subscriber, hub_of

router = APIRouter(tags=["events"])

SUBPROTOCOL = "bearer"
SEND_TIMEOUT_S = 30.0
"""A client that takes longer than this to accept one event is disconnected."""
TOO_SLOW = 1013
"""Close code for a client that fell too far behind: reconnect with `?after=<id>`."""


redact_access_log()  # the path and handshake headers uvicorn logs hold the token (core/logs.py)


def offered_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """(the token the client offers, the subprotocol to answer) from header, subprotocol or query."""
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if SUBPROTOCOL in offered:
        position = offered.index(SUBPROTOCOL)
        token = offered[position + 1] if position + 1 < len(offered) else None
        return token or None, SUBPROTOCOL
    return websocket.query_params.get("token"), None


def token_valid(settings: Settings, token: str | None) -> bool:
    expected = settings.api_token.get_secret_value() if settings.api_token else None
    return bool(token and expected and secrets.compare_digest(token.encode(), expected.encode()))


async def _send_events(websocket: WebSocket, subscriber: Subscriber) -> None:
    while True:
        if subscriber.overflowed and subscriber.queue.empty():
            reason = f"too slow; reconnect with after={subscriber.last_id}"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code=TOO_SLOW, reason=reason), SEND_TIMEOUT_S)
            return
        event = await subscriber.next()
        await asyncio.wait_for(websocket.send_json(event), SEND_TIMEOUT_S)


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        async for _ in websocket.iter_text():
            pass  # clients only listen; anything they send is ignored


@router.websocket("/api/v1/ws")
async def events(
    websocket: WebSocket,
    after: Annotated[int | None, Query(ge=0, description="Replay kept events after this id first")] = None,
) -> None:
    """Live events as JSON `{"id", "type", "at", "data"}`; the first frame is `subscribed`."""
    settings: Settings = websocket.app.state.settings
    token, subprotocol = offered_token(websocket)
    if not token_valid(settings, token):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="missing or invalid API token")
        return
    await websocket.accept(subprotocol=subprotocol)
    hub = hub_of(websocket.app.state)
    async with hub.subscribe(after=after) as subscriber:
        hello: dict[str, Any] = {"id": None, "type": "subscribed", "data": {"after": after}}
        await websocket.send_json(hello)
        tasks = [
            asyncio.create_task(_send_events(websocket, subscriber)),
            asyncio.create_task(_until_closed(websocket)),
        ]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in [*done, *pending]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
