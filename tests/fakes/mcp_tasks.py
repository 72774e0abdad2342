"""MCP Tasks (SEP-2663, the `io.modelcontextprotocol/tasks` extension of MCP 2026-07-28) for our
fake server, built on the `mcp` SDK's extension hooks (the SDK ships no tasks runtime yet).

A call to one of the `TASK_TOOLS` from a client that declares the extension is answered at once
with a task handle (`resultType: "task"`); the tool runs in the background and the client polls
`tasks/get`. `confirm_job` asks a person mid-task (`input_required`, answered with
`tasks/update`). `tasks/cancel` stops a running task. Every task request is counted."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolRequestParams, RequestParams
from pydantic import BaseModel, Field

TASKS = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"long_job", "confirm_job"})
POLL_INTERVAL_MS = 100


class _TaskParams(RequestParams):
    task_id: str = Field(alias="taskId")
    input_responses: dict[str, Any] | None = Field(None, alias="inputResponses")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _declares_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    meta: dict[str, Any] = dict(ctx.meta or {})
    capabilities = meta.get("io.modelcontextprotocol/clientCapabilities") or {}
    return TASKS in (capabilities.get("extensions") or {})


def _dump(result: HandlerResult) -> dict[str, Any]:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dict(result or {})


class TaskRunner(Extension):
    """The server's tasks: created by calls, polled, answered, cancelled."""

    identifier = TASKS

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.cancelled: list[str] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._answers: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in TASK_TOOLS or not _declares_tasks(ctx):
            return await call_next(ctx)
        task_id = uuid.uuid4().hex
        now = _now()
        task: dict[str, Any] = {
            "taskId": task_id,
            "status": "working",
            "statusMessage": f"{params.name} started",
            "createdAt": now,
            "lastUpdatedAt": now,
            "ttlMs": 3_600_000,
            "pollIntervalMs": POLL_INTERVAL_MS,
        }
        self.tasks[task_id] = task
        if params.name == "confirm_job":
            work = self._confirm(task, params)
        else:
            work = self._run(task, call_next, ctx)
        self._running[task_id] = asyncio.get_running_loop().create_task(work)
        return {"resultType": "task", **task}

    async def _run(
        self, task: dict[str, Any], call_next: CallNext, ctx: ServerRequestContext[Any, Any]
    ) -> None:
        try:
            result = _dump(await call_next(ctx))
        except asyncio.CancelledError:
            return
        except Exception as exc:  # a JSON-RPC failure of the tool: the task failed
            task.update(status="failed", error={"code": -32603, "message": str(exc)})
        else:
            task.update(status="completed", result=result, statusMessage="done")
        task["lastUpdatedAt"] = _now()

    async def _confirm(self, task: dict[str, Any], params: CallToolRequestParams) -> None:
        item = (params.arguments or {}).get("item", "?")
        key = f"confirm-{task['taskId'][:8]}"
        answer = self._answers[task["taskId"]] = asyncio.get_running_loop().create_future()
        task.update(
            status="input_required",
            inputRequests={
                key: {
                    "method": "elicitation/create",
                    "params": {
                        "mode": "form",
                        "message": f"Who confirms the job {item}?",
                        "requestedSchema": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "required": ["name"],
                        },
                    },
                }
            },
        )
        response = (await answer).get(key, {})
        task.pop("inputRequests", None)
        task.update(status="working")
        await asyncio.sleep(0.2)
        if response.get("action") == "accept":
            text = f"job {item} confirmed by {response.get('content', {}).get('name')}"
        else:
            text = f"job {item} not confirmed ({response.get('action')})"
        result = {"content": [{"type": "text", "text": text}], "isError": False}
        task.update(status="completed", result=result)

    def _task(self, task_id: str) -> dict[str, Any]:
        if task_id not in self.tasks:
            raise MCPError(code=-32602, message="Failed to retrieve task: Task not found")
        return self.tasks[task_id]

    async def _get(self, _ctx: ServerRequestContext[Any, Any], params: _TaskParams) -> HandlerResult:
        self.requests["get"] += 1
        return dict(self._task(params.task_id))

    async def _update(self, _ctx: ServerRequestContext[Any, Any], params: _TaskParams) -> HandlerResult:
        self.requests["update"] += 1
        self._task(params.task_id)
        answer = self._answers.get(params.task_id)
        if answer is not None and not answer.done():
            answer.set_result(params.input_responses or {})
        return {}

    async def _cancel(self, _ctx: ServerRequestContext[Any, Any], params: _TaskParams) -> HandlerResult:
        self.requests["cancel"] += 1
        task = self._task(params.task_id)
        running = self._running.get(params.task_id)
        if running is not None and not running.done():
            running.cancel()
            task.update(status="cancelled", lastUpdatedAt=_now())
            self.cancelled.append(params.task_id)
        return {}

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", _TaskParams, self._get),
            MethodBinding("tasks/update", _TaskParams, self._update),
            MethodBinding("tasks/cancel", _TaskParams, self._cancel),
        ]
