"""MCP tool calls as Temporal activities, and the pinning of the MCP tools a run uses.

`mcp_call_tool` makes one call (from a DAG tool node, or from an agent's loop) through this worker
process's pool of live sessions (`core/mcp_client.py`). Its retries follow the tool's annotations:

- The server could not be started or reached: no request was sent, so the attempt fails with the
  retryable `McpServerUnavailable` and Temporal tries again (the pool starts the server anew).
- A read-only or idempotent tool: any failure is retried like other tools.
- Any other tool: the call is recorded as started before it is sent and with its answer after
  (`activities.idempotency.once_external`). If it fails once sent (a dropped connection, a server
  killed mid-call, a timeout), or a retry after a worker crash finds it started and unanswered,
  the call is not sent again: the node fails with the final `McpOutcomeUnknown` and its
  `on_failure` decides. A recorded answer is returned to a retry without calling again.

A server may run a call as a task (MCP Tasks, HTTP servers only): the call then returns the
task's handle at once (recorded like any answer, so it is never sent again), and the workflow
polls it on durable timers with `mcp_get_task`, each poll a short read-only activity, so a tool
that runs for an hour holds no activity slot and outlives worker restarts. Its questions are
answered with `mcp_update_task`; a node cancelled meanwhile cancels it with `mcp_cancel_task`.

The server answering `isError` is the tool's own failure: final (`McpToolFailed`), its text in
the message. Progress notifications become heartbeat details (`progress`, `total`, `message`),
which the Web UI and `temporal workflow describe` show on the pending activity. The connection
settings (secrets included) are read from the database here and never travel in a payload.

The activities are methods of `McpActivities`, which `worker.py` builds once with its settings
and pool, so the pool lives as long as the worker and is closed with it.
"""

import asyncio
from typing import Any

from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolResult,
    ElicitRequest,
    ElicitResult,
    InputRequiredResult,
    InputResponses,
    ListRootsRequest,
    ListRootsResult,
    TextContent,
)
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.artifacts import tool_result
from activities.idempotency import OutcomeUnknown, once_external
from contracts.mcp import (
    MCP_CALL_ACTIVITY,
    MCP_CANCEL_TASK_ACTIVITY,
    MCP_DEFAULT_TIMEOUT_S,
    MCP_GET_TASK_ACTIVITY,
    MCP_INPUT_REFUSED,
    MCP_OUTCOME_UNKNOWN,
    MCP_RESOLVE_ACTIVITY,
    MCP_SERVER_UNAVAILABLE,
    MCP_TOOL_FAILED,
    MCP_TOOL_UNAVAILABLE,
    MCP_UPDATE_TASK_ACTIVITY,
    TASK_POLL_MIN_S,
    McpCallInput,
    McpCallOutcome,
    McpInputRequired,
    McpQuestion,
    McpTask,
    McpTaskRef,
    McpTaskState,
    McpTool,
)
from core.crypto import CryptoError
from core.db import session_scope
from core.mcp_client import (
    McpConnection,
    McpPool,
    McpUnavailable,
    TaskHandle,
    TaskMethod,
    TaskStatus,
    describe_failure,
)
from core.models.mcp_server import McpServer
from core.settings import Settings
from storage import mcp_servers as store

MAX_ERROR_CHARS = 2000


def output_of(result: CallToolResult) -> Any:
    """What a node or a model gets: the structured content when the tool gives one, else its
    text (one string), else every content block as JSON."""
    if result.structured_content is not None:
        return result.structured_content
    if all(isinstance(block, TextContent) for block in result.content):
        return "\n".join(block.text for block in result.content if isinstance(block, TextContent))
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content]


def _error_text(result: CallToolResult) -> str:
    text = " ".join(b.text for b in result.content if isinstance(b, TextContent)).strip()
    return (text or "the tool reported an error")[:MAX_ERROR_CHARS]


def _responses(answers: dict[str, dict[str, Any]] | None) -> InputResponses | None:
    """The answers a workflow collected, as the SDK sends them (elicitation or roots results)."""
    if answers is None:
        return None
    parsed: InputResponses = {}
    for key, answer in answers.items():
        parsed[key] = (
            ListRootsResult.model_validate(answer)
            if "roots" in answer
            else ElicitResult.model_validate(answer)
        )
    return parsed


def _input_required(name: str, result: InputRequiredResult) -> McpInputRequired:
    """What the server needs before it can finish: questions for a person, roots (none are
    offered); a request to sample goalflow's model is refused, final."""
    needed = McpInputRequired(request_state=result.request_state)
    for key, request in (result.input_requests or {}).items():
        if isinstance(request, ElicitRequest):
            params = request.params
            schema = getattr(params, "requested_schema", None)
            needed.questions.append(
                McpQuestion(
                    key=key,
                    message=params.message[:2000],
                    requested_schema=schema.model_dump(mode="json", by_alias=True, exclude_none=True)
                    if schema is not None and hasattr(schema, "model_dump")
                    else dict(schema or {}),
                )
            )
        elif isinstance(request, ListRootsRequest):
            needed.roots.append(key)
        else:
            raise ApplicationError(
                f"{name}: the server asked to sample a model, which goalflow does not offer",
                type=MCP_INPUT_REFUSED,
                non_retryable=True,
            )
    return needed


def _request_timeout_s() -> float:
    """An MCP request may take as long as the activity that sends it (its start-to-close)."""
    timeout = activity.info().start_to_close_timeout
    return timeout.total_seconds() if timeout else MCP_DEFAULT_TIMEOUT_S


def _task(handle: TaskHandle | TaskStatus) -> McpTask:
    interval = (handle.poll_interval_ms or 0) / 1000
    return McpTask(
        task_id=handle.task_id,
        status=handle.status,
        status_message=(handle.status_message or "")[:500],
        poll_interval_s=max(interval, TASK_POLL_MIN_S),
    )


class _Beat:
    """Heartbeats carrying the last progress the server reported, every `interval` seconds and
    at once on each progress notification (so the pending activity shows it)."""

    def __init__(self) -> None:
        self.details: dict[str, Any] = {}

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.details = {"progress": progress, "total": total, "message": (message or "")[:200]}
        activity.heartbeat(self.details)

    async def run(self) -> None:
        # The SDK sends the first heartbeat at once and later ones at most every 80 % of the
        # heartbeat timeout: beating only after a pause lets the first progress go out at once.
        timeout = activity.info().heartbeat_timeout
        interval = timeout.total_seconds() / 2 if timeout else 5.0
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(*([self.details] if self.details else []))


class McpActivities:
    """MCP calls and pinning, over one worker's settings and session pool."""

    def __init__(self, settings: Settings, pool: McpPool) -> None:
        self._settings = settings
        self._pool = pool

    async def _note(self, server_id: int, error: str | None) -> None:
        """Record how the last attempt to reach the server went (`/health/ready` shows it)."""
        async with session_scope(self._settings) as session:
            server = await session.get(McpServer, server_id)
            if server is not None and server.last_error != error:
                server.last_error = error
                session.add(server)
                await session.commit()

    async def _client(self, server_id: int, name: str, connection: McpConnection) -> Client:
        """The pool's live client for the server; one that cannot be had is recorded and fails the
        attempt with the retryable `McpServerUnavailable` (nothing was sent)."""
        try:
            return await self._pool.client(server_id, connection)
        except McpUnavailable as exc:
            await self._note(server_id, f"unreachable: {exc}"[:1000])
            raise ApplicationError(
                f"MCP server for {name!r} unavailable: {exc}", type=MCP_SERVER_UNAVAILABLE
            ) from None

    async def _connection(self, server_id: int, name: str) -> tuple[McpConnection, str | None]:
        async with session_scope(self._settings) as session:
            server = await session.get(McpServer, server_id)
        if server is None:
            raise ApplicationError(
                f"the MCP server of tool {name!r} is no longer registered",
                type=MCP_TOOL_UNAVAILABLE,
                non_retryable=True,
            )
        try:
            return store.connection(self._settings, server), server.last_error
        except CryptoError as exc:
            raise ApplicationError(str(exc), type=MCP_SERVER_UNAVAILABLE, non_retryable=True) from None

    @activity.defn(name=MCP_CALL_ACTIVITY)
    async def call_tool(self, params: McpCallInput) -> McpCallOutcome:
        """Call one MCP tool: at most once unless it is read-only or idempotent. Its result, or
        the questions the server asks first (answered by the workflow, then called again)."""
        beat = _Beat()
        beating = asyncio.create_task(beat.run()) if not activity.info().is_local else None
        try:
            return await self._call(params, beat)
        finally:
            if beating is not None:
                beating.cancel()

    async def _call(self, params: McpCallInput, beat: _Beat) -> McpCallOutcome:
        connection, last_error = await self._connection(params.server_id, params.name)
        timeout_s = _request_timeout_s()
        client = await self._client(params.server_id, params.name, connection)

        async def perform() -> Any:
            result = await self._pool.call(
                params.server_id,
                client,
                params.tool,
                params.arguments,
                timeout_s=timeout_s,
                progress=beat.progress,
                input_responses=_responses(params.input_responses),
                request_state=params.request_state,
            )
            if isinstance(result, InputRequiredResult):
                return {"input_required": _input_required(params.name, result).model_dump(mode="json")}
            if isinstance(result, TaskHandle):
                return {"task": _task(result).model_dump(mode="json")}
            if result.is_error:
                raise ApplicationError(
                    f"{params.name}: {_error_text(result)}", type=MCP_TOOL_FAILED, non_retryable=True
                )
            return {"output": output_of(result)}

        try:
            if params.retry_safe:
                output = await perform()
            else:
                output = await once_external(
                    "mcp_call",
                    {"tool": params.name, "arguments": params.arguments},
                    perform,
                    never_sent=lambda _: False,
                )
        except ApplicationError:
            raise
        except OutcomeUnknown as exc:
            raise ApplicationError(
                f"{params.name}: {exc}", type=MCP_OUTCOME_UNKNOWN, non_retryable=True
            ) from None
        except Exception as exc:
            timed_out = isinstance(exc, TimeoutError)
            reason = "no answer within the timeout" if timed_out else describe_failure(exc)
            if params.retry_safe:
                raise ApplicationError(f"{params.name}: {reason}", type=MCP_SERVER_UNAVAILABLE) from None
            raise ApplicationError(
                f"{params.name} may have run but its answer was lost ({reason}); it is not called again",
                type=MCP_OUTCOME_UNKNOWN,
                non_retryable=True,
            ) from None
        if last_error is not None:
            await self._note(params.server_id, None)
        if "input_required" in output:
            return McpCallOutcome(input_required=McpInputRequired.model_validate(output["input_required"]))
        if "task" in output:
            return McpCallOutcome(task=McpTask.model_validate(output["task"]))
        return McpCallOutcome(result=await tool_result(params.name, output["output"]))

    async def _task_request(
        self, ref: McpTaskRef, method: TaskMethod, input_responses: dict[str, Any] | None = None
    ) -> TaskStatus | None:
        """One request about a task; every one of them is safe to send again (a poll reads, a
        cancel is idempotent, and a server ignores answers to questions no longer open)."""
        connection, _ = await self._connection(ref.server_id, ref.name)
        client = await self._client(ref.server_id, ref.name, connection)
        try:
            return await self._pool.task(
                ref.server_id,
                client,
                method,
                ref.task_id,
                timeout_s=_request_timeout_s(),
                input_responses=input_responses,
            )
        except MCPError as exc:
            if exc.code == -32602:  # the server does not know the task (any more)
                raise ApplicationError(
                    f"{ref.name}: the server no longer knows its task {ref.task_id} ({exc.message[:300]});"
                    " it may have run, and it is not called again",
                    type=MCP_OUTCOME_UNKNOWN,
                    non_retryable=True,
                ) from None
            raise ApplicationError(
                f"{ref.name}: tasks/{method} failed: {exc.message[:500]}", type=MCP_SERVER_UNAVAILABLE
            ) from None
        except Exception as exc:
            raise ApplicationError(
                f"{ref.name}: tasks/{method}: {describe_failure(exc)}", type=MCP_SERVER_UNAVAILABLE
            ) from None

    @activity.defn(name=MCP_GET_TASK_ACTIVITY)
    async def get_task(self, ref: McpTaskRef) -> McpTaskState:
        """Poll a task the server runs a call as: how it stands, its result once completed, its
        questions while it waits for input. A failed or cancelled task fails the node."""
        status = await self._task_request(ref, "get")
        assert status is not None
        task = _task(status)
        if status.status == "completed":
            result = CallToolResult.model_validate(status.result or {"content": []})
            if result.is_error:
                raise ApplicationError(
                    f"{ref.name}: {_error_text(result)}", type=MCP_TOOL_FAILED, non_retryable=True
                )
            return McpTaskState(task=task, result=await tool_result(ref.name, output_of(result)))
        if status.status in ("failed", "cancelled"):
            why = str((status.error or {}).get("message") or status.status_message or status.status)
            raise ApplicationError(
                f"{ref.name}: the server's task {status.status}: {why[:MAX_ERROR_CHARS]}",
                type=MCP_TOOL_FAILED,
                non_retryable=True,
            )
        if status.status == "input_required" and status.input_requests:
            asked = InputRequiredResult.model_validate(
                {"resultType": "input_required", "inputRequests": status.input_requests}
            )
            return McpTaskState(task=task, input_required=_input_required(ref.name, asked))
        return McpTaskState(task=task)

    @activity.defn(name=MCP_UPDATE_TASK_ACTIVITY)
    async def update_task(self, ref: McpTaskRef) -> None:
        """Send a person's answers to a task's questions (`tasks/update`)."""
        answers = _responses(ref.input_responses) or {}
        dumped = {
            key: answer.model_dump(mode="json", by_alias=True, exclude_none=True)
            for key, answer in answers.items()
        }
        await self._task_request(ref, "update", dumped)

    @activity.defn(name=MCP_CANCEL_TASK_ACTIVITY)
    async def cancel_task(self, ref: McpTaskRef) -> None:
        """Ask the server to cancel a task whose node was cancelled (`tasks/cancel`)."""
        await self._task_request(ref, "cancel")

    @activity.defn(name=MCP_RESOLVE_ACTIVITY)
    async def resolve_tools(self, names: list[str]) -> dict[str, McpTool]:
        """The named MCP tools as their servers list them now, for a run that starts; a tool that
        is gone fails the run with a readable `McpToolUnavailable` (no retry)."""
        async with session_scope(self._settings) as session:
            found, missing = await store.find_tools(session, names)
        if missing:
            raise ApplicationError(
                "; ".join(f"{name}: {why}" for name, why in sorted(missing.items())),
                type=MCP_TOOL_UNAVAILABLE,
                non_retryable=True,
            )
        return found

    def activities(self) -> list[Any]:
        """Every activity of this class, for the worker to register."""
        return [
            self.call_tool,
            self.resolve_tools,
            self.get_task,
            self.update_task,
            self.cancel_task,
        ]

    async def close(self) -> None:
        """Stop every server this worker started."""
        await self._pool.close()
