"""A Streamable HTTP MCP server of our own, built with the `mcp` SDK, for goalflow's MCP tests.

It counts every call it receives (so a test sees a call arrive exactly once), can require a header
(so a test sees the registered secret reach it), and offers tools with each kind of annotation:
read-only `lookup`, non-idempotent `append_note`, destructive `delete_note`, a slow `count_to`
that reports progress, `sign_guestbook`, which asks a person first (MCP elicitation), `hang`,
which never answers, `read_page`, 48 KB of text, and two tools it runs as MCP Tasks for a client
that declares them (`long_job`, `confirm_job`, which asks a person mid-task:
`tests/fakes/mcp_tasks.py`).
"""

import asyncio
import socket
import threading
import time
from collections import Counter
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.mcp_tasks import TaskRunner

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, destructive_hint=False)
APPENDS = ToolAnnotations(read_only_hint=False, idempotent_hint=False, destructive_hint=False)
DESTROYS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)


class Guest(BaseModel):
    name: str
    visits: int = 1


def ask_guest() -> Elicit[Guest]:
    return Elicit("Who is signing the guestbook?", Guest)


class NotesServer:
    """The fake's state: notes, and how often each tool was called with what."""

    def __init__(self, *, required_header: tuple[str, str] | None = None) -> None:
        self.notes: list[str] = []
        self.calls: Counter[str] = Counter()
        self.arguments: list[tuple[str, dict[str, Any]]] = []
        self.seen_headers: list[dict[str, str]] = []
        self.required_header = required_header
        self.port = 0
        self.thread: threading.Thread | None = None
        """The thread serving it (joined by `stop`)."""
        self.release = threading.Event()
        """Set to let a `count_to` in flight finish early (tests that kill a worker mid-call)."""
        self.tasks = TaskRunner()

    def _record(self, tool: str, arguments: dict[str, Any]) -> None:
        self.calls[tool] += 1
        self.arguments.append((tool, arguments))

    def build(self) -> MCPServer:
        server = MCPServer("notes", instructions="Keeps short notes.", extensions=[self.tasks])

        @server.tool(annotations=READ_ONLY)
        def lookup(word: str) -> str:
            """Whether a word appears in any note."""
            self._record("lookup", {"word": word})
            return f"{word}: {'found' if any(word in n for n in self.notes) else 'not found'}"

        @server.tool(annotations=APPENDS)
        def append_note(text: str) -> str:
            """Append a note (each call adds one)."""
            self._record("append_note", {"text": text})
            self.notes.append(text)
            return f"{len(self.notes)} notes"

        @server.tool(annotations=DESTROYS)
        def delete_note(index: int) -> str:
            """Delete the note at an index."""
            self._record("delete_note", {"index": index})
            if 0 <= index < len(self.notes):
                return f"deleted {self.notes.pop(index)!r}"
            raise ValueError(f"no note at index {index}")

        @server.tool(annotations=APPENDS)
        async def count_to(n: int, ctx: Context) -> str:
            """Count slowly to n, reporting progress every step (0.5 s each)."""
            self._record("count_to", {"n": n})
            for step in range(1, n + 1):
                await ctx.report_progress(step, n, f"counted {step}")
                if self.release.is_set():
                    break
                await asyncio.sleep(0.5)
            self.notes.append(f"counted to {n}")
            return f"counted to {n}"

        @server.tool(annotations=APPENDS)
        def sign_guestbook(who: Annotated[ElicitationResult[Guest], Resolve(ask_guest)]) -> str:
            """Sign the guestbook: asks a person for their name and whether to sign."""
            self._record("sign_guestbook", {})
            if not isinstance(who, AcceptedElicitation):
                return f"not signed ({who.action})"
            self.notes.append(f"guest {who.data.name}")
            return f"signed by {who.data.name} ({who.data.visits} visits)"

        @server.tool(annotations=APPENDS)
        async def long_job(seconds: float) -> str:
            """Work for a while (run as a task for a client that can poll one)."""
            self._record("long_job", {"seconds": seconds})
            if seconds < 0:
                raise ToolError(f"seconds must not be negative, not {seconds:g}")
            deadline = time.monotonic() + seconds
            # `release` is a threading.Event (set from the test's thread): polled, not awaited.
            while time.monotonic() < deadline and not self.release.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            self.notes.append(f"worked {seconds:g} s")
            return f"worked {seconds:g} s"

        @server.tool(annotations=APPENDS)
        def confirm_job(item: str) -> str:
            """Run a job a person confirms mid-way (only as a task)."""
            self._record("confirm_job", {"item": item})
            raise ValueError("confirm_job runs only as a task")

        @server.tool(annotations=READ_ONLY)
        def read_page(page: int) -> str:
            """One page of a long document: 48 KB of text."""
            self._record("read_page", {"page": page})
            line = f"page {page}: " + "lorem ipsum dolor sit amet " * 3
            return (line + "\n") * (48 * 1024 // (len(line) + 1))

        @server.tool(annotations=READ_ONLY)
        async def hang() -> str:
            """Never answers."""
            self._record("hang", {})
            await asyncio.sleep(3600)
            return "never"

        return server

    def app(self) -> ASGIApp:
        inner = self.build().streamable_http_app(stateless_http=False)
        required = self.required_header

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                self.seen_headers.append(headers)
                if required is not None and headers.get(required[0].lower()) != required[1]:
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await inner(scope, receive, send)

        return guarded


def start(fake: NotesServer, *, port: int = 0) -> uvicorn.Server:
    """Serve the fake on a loopback port (a free one by default) in a background thread (its
    URL: /mcp); `port` serves it again where it was (a restarted server)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    fake.port = sock.getsockname()[1]
    config = uvicorn.Config(fake.app(), log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    fake.thread = thread
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server


def stop(fake: NotesServer, server: uvicorn.Server) -> None:
    """Stop serving (open connections are dropped within a second) and wait until it is down."""
    server.should_exit = True
    if fake.thread is not None:
        fake.thread.join(10)


def url(fake: NotesServer) -> str:
    return f"http://127.0.0.1:{fake.port}/mcp"
