"""A real uvicorn API and an SSE reader, for the event-stream tests.

Served on loopback because the ASGI test transport buffers a streamed body, and the point of
these tests is reading part of a live stream, dropping the connection and coming back.
"""

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn

from api.main import create_app
from core.settings import Settings


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """The API under uvicorn on a free loopback port (a browser or a plain socket client needs a
    real server); its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def served_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API under uvicorn, and an authenticated client for it."""
    assert settings.api_token is not None
    headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
    async with serving(settings) as url, httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        yield http


async def read_events(
    http: httpx.AsyncClient, path: str, *, last_event_id: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """Read SSE events from `path` until one named `until` (then hang up) or the stream's end."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with http.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                field, _, value = line.partition(": ")
                current[field] = value
                continue
            if current:
                event = {"id": current.get("id"), "event": current.get("event")}
                event["data"] = json.loads(current["data"]) if "data" in current else None
                events.append(event)
                current = {}
                if event["event"] == until:
                    break
    return events
