"""Talking to MCP servers with the `mcp` SDK: one-off checks (registering a server) and a
per-process pool of live sessions (the worker's calls).

A stdio server is a child process of the process that uses it; an HTTP server a Streamable HTTP
session. Each pooled session is owned by one background task that holds the SDK's client open
(its anyio scopes must be entered and left by the same task) until it is closed, replaced or
found dead; calls from any task go through it. A session whose server died, whose call hung past
its timeout, or whose settings changed (a PATCH) is closed and the next call starts a new one,
so a killed server costs at most the call in flight. Each worker process keeps its own stdio
children: they never share one server's pipes.

The connection's environment and headers are secrets: they live only in `McpConnection` (never
logged, never in a repr) and in the child's environment or the HTTP client's headers.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import anyio
import httpx2
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolResult,
    CreateMessageRequestParams,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    InputRequiredResult,
    InputResponses,
    Request,
    RequestParams,
    Result,
    Tool,
)
from mcp_types.jsonrpc import CONNECTION_CLOSED, REQUEST_TIMEOUT
from pydantic import ConfigDict, Field

from contracts.mcp import TASKS_EXTENSION

log = logging.getLogger("goalflow.mcp")

CONNECT_TIMEOUT_S = 30.0
"""Starting a server and its handshake (a first `uvx` download is not expected here)."""


class McpUnavailable(Exception):
    """The server could not be started, reached or initialized; no call was sent."""


@dataclass(frozen=True)
class McpConnection:
    """How to reach one server; `env` and `headers` are secrets (excluded from repr)."""

    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    cwd: str | None = None
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False, hash=False, compare=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False, hash=False, compare=False)

    def fingerprint(self) -> str:
        """Changes whenever anything about the connection does (secrets included, hashed)."""
        data = [self.transport, self.command, list(self.args), self.cwd, self.url, self.env, self.headers]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def where(self) -> str:
        """Where the server is, for messages: the command's name or the URL (no secrets)."""
        return self.url or (self.command or "?")


async def _no_mid_call_elicitation(_context: Any, params: ElicitRequestParams) -> ElicitResult:
    """A server on an older protocol asking a person mid-call, on the connection: that cannot wait
    durably (the question would die with the worker), so it is declined, and logged."""
    log.warning("an MCP server asked mid-call (older protocol): declined: %s", params.message[:200])
    return ElicitResult(action="decline")


async def _no_sampling(_context: Any, _params: CreateMessageRequestParams) -> ErrorData:
    """goalflow does not lend its models to MCP servers: refused, never silently."""
    log.warning("an MCP server asked to sample a model: refused")
    return ErrorData(code=-32601, message="goalflow does not offer sampling to MCP servers")


class TaskHandle(Result):
    """A `tools/call` answered with a task (MCP Tasks, `resultType: "task"`)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field("task", alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str = "working"
    status_message: str | None = Field(None, alias="statusMessage")
    poll_interval_ms: float | None = Field(None, alias="pollIntervalMs")


class TaskStatus(Result):
    """A `tasks/get` answer: the task, with its `result`, `error` or `inputRequests` inlined."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId")
    status: str
    status_message: str | None = Field(None, alias="statusMessage")
    poll_interval_ms: float | None = Field(None, alias="pollIntervalMs")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = Field(None, alias="inputRequests")


TaskMethod = Literal["get", "update", "cancel"]
"""The requests about a task: `tasks/get`, `tasks/update`, `tasks/cancel`."""


class _TaskParams(RequestParams):
    task_id: str = Field(alias="taskId")
    input_responses: dict[str, Any] | None = Field(None, alias="inputResponses")


class _GetTask(Request[_TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class _UpdateTask(Request[_TaskParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param = "taskId"


class _CancelTask(Request[_TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class _Ack(Result):
    model_config = ConfigDict(extra="allow")


async def _not_here(_handle: TaskHandle, _context: ClaimContext) -> CallToolResult:
    """Never used: calls are made with `allow_claimed`, and the workflow polls the task."""
    raise RuntimeError("an MCP task is followed by the workflow, not inside the call")


class _Tasks(ClientExtension):
    """Declares MCP Tasks on every request; the handle comes back to the caller as it is."""

    identifier = TASKS_EXTENSION

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=_not_here)]


def _client(connection: McpConnection, *, errlog: TextIO | None = None) -> Client:
    """A client for the connection; a stdio server's stderr goes to `errlog` (the process's own
    stderr, its log, by default)."""
    # The callbacks declare the elicitation capability (servers on MCP 2026-07-28 then ask in
    # `input_required` results, which a workflow answers durably) and answer older servers.
    callbacks: dict[str, Any] = {
        "elicitation_callback": _no_mid_call_elicitation,
        "sampling_callback": _no_sampling,
    }
    if connection.transport == "stdio":
        assert connection.command is not None
        params = StdioServerParameters(
            command=connection.command,
            args=list(connection.args),
            env=connection.env or None,
            cwd=connection.cwd,
        )
        transport = stdio_client(params, errlog=errlog or sys.stderr)
        return Client(transport, raise_exceptions=True, cache=None, **callbacks)
    assert connection.url is not None
    http: httpx2.AsyncClient = create_mcp_http_client(headers=connection.headers or None)
    # Only an HTTP server is offered tasks: a stdio server is a child of one worker process, so a
    # task it ran would die with that worker, and the next poll might reach another worker's.
    return Client(
        streamable_http_client(connection.url, http_client=http),
        raise_exceptions=True,
        cache=None,
        extensions=[_Tasks()],
        **callbacks,
    )


def describe_failure(exc: BaseException) -> str:
    """A readable reason from the SDK's (often grouped) exceptions, without secrets."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


async def list_tools_once(connection: McpConnection, *, timeout_s: float = CONNECT_TIMEOUT_S) -> list[Tool]:
    """Start or reach the server, initialize, list every tool (all pages), and close. A stdio
    server that fails says why on its stderr: its last lines join the reason (secrets masked)."""
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errlog:
        try:
            with anyio.fail_after(timeout_s):
                async with _client(connection, errlog=errlog) as client:
                    return await _all_tools(client)
        except TimeoutError:
            reason = f"no answer from {connection.where()} within {timeout_s:g} s"
        except Exception as exc:
            reason = describe_failure(exc)
        said = _tail(errlog, connection)
    raise McpUnavailable(f"{reason}; the server said: {said}" if said else reason)


def _tail(errlog: TextIO, connection: McpConnection, chars: int = 400) -> str:
    """The end of what a stdio server wrote to stderr, on one line, its env values masked."""
    errlog.seek(0)
    text = " ".join(errlog.read()[-4000:].split())
    for secret in (*connection.env.values(), *connection.headers.values()):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text[-chars:]


async def _all_tools(client: Client) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever is not listed forever
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


class _Session:
    """One live client, held open by its owner task until closed."""

    def __init__(self, connection: McpConnection) -> None:
        self.fingerprint = connection.fingerprint()
        self._connection = connection
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._client: Client | None = None
        self._error: str | None = None
        self.dead = False
        self._task = asyncio.create_task(self._own(), name=f"mcp session {connection.where()}")

    async def _own(self) -> None:
        try:
            async with _client(self._connection) as client:
                self._client = client
                self._ready.set()
                await self._closing.wait()
        except BaseException as exc:  # a dead server ends up here: the next call starts a new one
            self._error = describe_failure(exc)
            if not isinstance(exc, asyncio.CancelledError):
                log.info("MCP session to %s ended: %s", self._connection.where(), self._error)
        finally:
            self.dead = True
            self._client = None
            self._ready.set()

    async def client(self) -> Client:
        try:
            await asyncio.wait_for(self._ready.wait(), CONNECT_TIMEOUT_S)
        except TimeoutError:
            await self.close()
            raise McpUnavailable(
                f"no answer from {self._connection.where()} within {CONNECT_TIMEOUT_S:g} s"
            ) from None
        if self._client is None:
            raise McpUnavailable(self._error or f"cannot reach {self._connection.where()}")
        return self._client

    async def close(self) -> None:
        self._closing.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        except (TimeoutError, Exception):
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class McpPool:
    """Live sessions of this process, one per server id, started on first use."""

    def __init__(self) -> None:
        self._sessions: dict[int, _Session] = {}
        self._lock = asyncio.Lock()

    async def _session(self, server_id: int, connection: McpConnection) -> _Session:
        async with self._lock:
            session = self._sessions.get(server_id)
            if session is not None and (session.dead or session.fingerprint != connection.fingerprint()):
                await session.close()
                session = None
            if session is None:
                session = self._sessions[server_id] = _Session(connection)
            return session

    async def client(self, server_id: int, connection: McpConnection) -> Client:
        """A live, initialized client for the server; McpUnavailable when it cannot be had."""
        session = await self._session(server_id, connection)
        try:
            return await session.client()
        except McpUnavailable:
            await self.discard(server_id, session)
            raise

    async def call(
        self,
        server_id: int,
        client: Client,
        tool: str,
        arguments: dict[str, Any],
        *,
        timeout_s: float,
        progress: ProgressFnT | None = None,
        input_responses: InputResponses | None = None,
        request_state: str | None = None,
    ) -> CallToolResult | InputRequiredResult | TaskHandle:
        """Call a tool on a client from `client()`: its result, the input the server needs
        first (MCP 2026-07-28; the caller answers and calls again with `input_responses` and
        `request_state`), or the task the server runs it as (MCP Tasks; the caller polls it).
        A call that hangs past `timeout_s` or breaks the connection closes the session, so the
        next call starts the server again."""
        session = self._sessions.get(server_id)
        try:
            with anyio.fail_after(timeout_s):
                result = await client.session.call_tool(
                    tool,
                    arguments,
                    progress_callback=progress,
                    input_responses=input_responses,
                    request_state=request_state,
                    allow_input_required=True,
                    allow_claimed=True,
                )
            if isinstance(result, CallToolResult | InputRequiredResult | TaskHandle):
                return result
            raise McpUnavailable(f"unexpected answer to tools/call: {type(result).__name__}")
        except BaseException as exc:
            if session is not None and not _answered_error(exc):
                await self.discard(server_id, session)
            raise

    async def task(
        self,
        server_id: int,
        client: Client,
        method: TaskMethod,
        task_id: str,
        *,
        timeout_s: float,
        input_responses: dict[str, Any] | None = None,
    ) -> TaskStatus | None:
        """`tasks/get` (the task as it stands), `tasks/update` (answers to its questions) or
        `tasks/cancel` on a server's task; a broken connection closes the session like a call."""
        params = _TaskParams(taskId=task_id, inputResponses=input_responses)
        session = self._sessions.get(server_id)
        try:
            with anyio.fail_after(timeout_s):
                if method == "get":
                    return await client.session.send_request(_GetTask(params=params), TaskStatus)
                request = _UpdateTask(params=params) if method == "update" else _CancelTask(params=params)
                await client.session.send_request(request, _Ack)
                return None
        except BaseException as exc:
            if session is not None and not _answered_error(exc):
                await self.discard(server_id, session)
            raise

    async def discard(self, server_id: int, session: _Session | None = None) -> None:
        """Close a server's session (the one given, if it is still the current one)."""
        async with self._lock:
            current = self._sessions.get(server_id)
            if current is None or (session is not None and current is not session):
                return
            del self._sessions[server_id]
        await current.close()

    async def close(self) -> None:
        """Close every session (their stdio children exit): at worker shutdown."""
        async with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

    def server_ids(self) -> list[int]:
        return sorted(self._sessions)


def _answered_error(exc: BaseException) -> bool:
    """An error the server answered with (the session is fine), not a broken connection."""
    return isinstance(exc, MCPError) and exc.code not in (CONNECTION_CLOSED, REQUEST_TIMEOUT)
