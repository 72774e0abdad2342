"""A cap on request bodies, enforced before any route reads them.

A body over `MAX_BODY_BYTES` is answered 413 with a clear message: without it, a 20 MB
`execute-dag` body travels to Temporal and comes back as a raw gRPC size error. Pure ASGI (no
Starlette setting covers it), so a chunked upload is cut off as soon as it passes the cap too.

The refused body is read and dropped (up to `DRAIN_BYTES`) before the 413 goes out: a client that
sends its whole body before it reads an answer (Python's `urllib`, many others) had its socket
closed under its upload and saw "connection reset by peer" instead of the 413.
"""

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Above the largest legitimate body: a 1 MB DAG spec, or 1 MiB of task attachments as multipart."""
DRAIN_BYTES = 64 * 1024 * 1024
"""How much of a refused body is read and dropped so its sender can read the 413; a larger one
gets the answer with its connection closed after it."""


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the cap.

    An HTTPException, because FastAPI turns any other exception raised while it reads a body into
    a 400 "There was an error parsing the body": a chunked body over the cap would not be a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")


async def answer_json(send: Send, status: int, content: object) -> None:
    """Answer a request from an ASGI middleware, before any route ran, in the API's error shape."""
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _answer_413(send: Send, limit: int) -> None:
    await answer_json(send, 413, {"detail": f"request body larger than {limit} bytes"})


async def _drain(receive: Receive, budget: int = DRAIN_BYTES) -> None:
    """Read and drop the rest of the request body, up to `budget` bytes."""
    dropped = 0
    while dropped <= budget:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client went away
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodySizeLimit:
    """ASGI middleware: 413 for a declared or streamed body over `limit` bytes."""

    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _drain(receive)
            await _answer_413(send, self.limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _drain(receive)
                await _answer_413(send, self.limit)
