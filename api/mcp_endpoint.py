"""goalflow as an MCP server: `/api/v1/mcp`, Streamable HTTP, behind the API's bearer token.

An AI agent that speaks MCP (a coding assistant, another agent framework) can then hand goalflow
durable work and follow it without a goalflow-specific client: start a goal run or a stored DAG,
read how it is doing, approve or reject a node that waits for a person. Each tool is a thin call
into the same service functions the REST routes call, with the same dependencies
(`api/deps.py`), so both front ends answer alike; a `DomainError` (and a Temporal RPC error the
services let through) becomes an `isError` tool result carrying its message, as a REST route's
4xx/5xx carries it in `detail`.

The transport runs stateless with JSON answers: every POST is a complete exchange, so nothing
is kept between requests and any API replica can answer any call. It is routed on one exact
path (a plain Starlette route, not an OpenAPI operation, so `/openapi.json` is unchanged) and
its session manager runs inside the app's lifespan (`api/main.py`). DNS-rebinding checks are
off: the bearer token, which a browser on another origin cannot send, already guards the path.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.security import HTTPBearer
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import get_app_settings, get_temporal, require_token
from api.routes.goals import RunStarted
from contracts.agents import AgentName
from contracts.dag import ApprovalDecision, DagStatus
from contracts.dag_executions import ExecutionDetail, Started
from contracts.runs import RunDetail
from core.db import session_scope
from core.errors import DomainError
from core.models import GoalCreate
from core.settings import Settings
from services import dag_executions, goals, runs
from services.temporal_errors import rpc_error

MCP_PATH = "/api/v1/mcp"
TITLE_CHARS = 80

GoalText = Annotated[
    str,
    Field(min_length=1, max_length=20_000, description="What to achieve, in plain words"),
]
RunId = Annotated[
    str,
    Field(pattern=r"^goal-[A-Za-z0-9:_.-]{1,250}$", description="A goal run id, goal-<goalId>-<shortid>"),
]
ExecutionId = Annotated[
    str,
    Field(pattern=r"^dag-[A-Za-z0-9_.:-]{1,200}$", description="A DAG execution id, dag-<dagId>-<shortid>"),
]
DagId = Annotated[int, Field(ge=1, le=2**31 - 1, description="The id of a stored DAG")]
NodeId = Annotated[str, Field(min_length=1, max_length=64, description="The node that waits for approval")]
Comment = Annotated[str, Field(max_length=2000, description="Why, for the execution's history")]

_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
_START = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False)
_APPROVE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False)
_REJECT = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False)
"""A rejected node fails for good (its `on_failure` may fail the whole execution)."""


@contextmanager
def _service_errors(what: str) -> Iterator[None]:
    """The errors a REST route would answer as 4xx/5xx, as the tool's error result instead."""
    try:
        yield
    except DomainError as exc:
        raise ToolError(str(exc)) from exc
    except RPCError as exc:  # one the service did not map (api/main.py answers these too)
        raise ToolError(str(rpc_error(exc, what=what))) from exc
    except HTTPException as exc:  # Temporal unreachable (api/deps.py `get_temporal`)
        raise ToolError(str(exc.detail)) from exc


async def _deps(ctx: Context) -> tuple[Settings, Client]:
    """The settings and Temporal client a REST route gets, from the HTTP request of this call."""
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise ToolError("goalflow's MCP tools are served over HTTP only")
    settings = get_app_settings(request)
    return settings, await get_temporal(request, settings)


def _title(text: str) -> str:
    """A goal's title from its text: the first line, cut at a word."""
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else text
    if len(line) <= TITLE_CHARS:
        return line
    return line[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


async def start_goal_run(goal: GoalText, ctx: Context, agent: AgentName | None = None) -> RunStarted:
    """Create a goal from this text (planned by `agent`, default `planner`) and start one run of it
    now; follow the run with get_run."""
    with _service_errors("the goal run"):
        settings, client = await _deps(ctx)
        # Like `POST /goals` with only a title and an objective unless an agent is named: an
        # agent named explicitly must exist, the default planner may be configured later.
        named: dict[str, Any] = {"agent_name": agent} if agent else {}
        created = GoalCreate.model_validate({"title": _title(goal), "objective": goal, **named})
        async with session_scope(settings) as session:
            stored = await goals.create_goal(session, client, settings, created)
            assert stored.id is not None
            try:
                run_id = await goals.start_run(session, client, settings, stored.id)
            except DomainError as exc:
                raise ToolError(f"goal {stored.id} is saved, but it cannot run: {exc}") from exc
    return RunStarted(id=run_id, goal_id=stored.id, web_ui_url=settings.workflow_ui_url(run_id))


async def get_run(run_id: RunId, ctx: Context) -> RunDetail:
    """A goal run's status, phase, usage and, once finished, its result (steps, report artifacts)
    or failure."""
    with _service_errors(f"run {run_id}"):
        settings, client = await _deps(ctx)
        return await runs.get_run(client, settings, run_id)


async def run_dag(dag_id: DagId, ctx: Context, params: dict[str, Any] | None = None) -> Started:
    """Start an execution of a stored DAG with `params` over its spec's defaults; follow it with
    get_dag_execution."""
    with _service_errors(f"DAG {dag_id}"):
        settings, client = await _deps(ctx)
        async with session_scope(settings) as session:
            return await dag_executions.start_execution(
                session, client, settings, dag_id=dag_id, params=params or {}
            )


async def get_dag_execution(execution_id: ExecutionId, ctx: Context) -> ExecutionDetail:
    """A DAG execution's status, node states (outputs included) and usage, and which node waits
    for what."""
    with _service_errors(f"DAG execution {execution_id}"):
        settings, client = await _deps(ctx)
        return await dag_executions.get_execution(client, settings, execution_id)


async def _decide(ctx: Context, execution_id: str, node_id: str, comment: str, *, approve: bool) -> DagStatus:
    with _service_errors(f"DAG execution {execution_id}"):
        _, client = await _deps(ctx)
        decision = ApprovalDecision(node_id=node_id, comment=comment)
        return await dag_executions.decide(client, execution_id, decision, approve=approve)


async def approve_node(
    execution_id: ExecutionId, node_id: NodeId, ctx: Context, comment: Comment = ""
) -> DagStatus:
    """Approve a DAG node that waits for approval, so it runs; answers the execution's status."""
    return await _decide(ctx, execution_id, node_id, comment, approve=True)


async def reject_node(
    execution_id: ExecutionId, node_id: NodeId, ctx: Context, comment: Comment = ""
) -> DagStatus:
    """Reject a DAG node that waits for approval (it fails, its `on_failure` decides what
    follows); answers the execution's status."""
    return await _decide(ctx, execution_id, node_id, comment, approve=False)


TOOLS = (
    (start_goal_run, _START),
    (get_run, _READ),
    (run_dag, _START),
    (get_dag_execution, _READ),
    (approve_node, _APPROVE),
    (reject_node, _REJECT),
)


def build_server() -> MCPServer:
    """An MCP server with goalflow's tools; one per app (its session manager runs once)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    server: MCPServer = MCPServer(
        "goalflow",
        instructions=(
            "Durable AI-agent work on Temporal: start a goal run or a stored DAG, poll it with "
            "get_run / get_dag_execution, and approve or reject nodes that wait for a person."
        ),
        version="0.1.0",
    )
    # The SDK calls `logging.basicConfig` (a rich handler on the root logger) when nothing was
    # set up yet; logging is core/logs.py's to configure, whenever it runs.
    root.handlers[:] = handlers
    root.setLevel(level)
    for fn, annotations in TOOLS:
        # The docstring, on one line: clients show it to a model as the tool's description.
        server.add_tool(fn, description=" ".join((fn.__doc__ or "").split()), annotations=annotations)
    return server


class _BehindToken:
    """`require_token`, the check every protected REST route runs, in front of the transport."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bearer = HTTPBearer(auto_error=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        # Raises the REST routes' own 401 (the app's exception middleware answers it).
        await require_token(get_app_settings(request), await self.bearer(request))
        await self.app(scope, receive, send)


def mount(app: FastAPI) -> StreamableHTTPSessionManager:
    """Route `MCP_PATH` to a new MCP server behind the token; the caller runs the returned session
    manager (`async with manager.run():`) for the app's lifetime."""
    server = build_server()
    server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    # A route with an ASGI endpoint: the exact path (a mount would redirect it to `.../mcp/`).
    app.router.routes.append(Route(MCP_PATH, _BehindToken(manager.handle_request), include_in_schema=False))
    return manager
