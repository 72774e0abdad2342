"""Readiness checks, each naming the part it covers.

Required parts (database, Temporal, a worker polling the task queue) decide the answer: one down
makes the service unavailable (503). Informational parts (providers, MCP servers, schedules, the local model,
runs held because their workflow task keeps failing)
report honestly but never take the API out of rotation: a provider whose key was revoked or a
schedule that went missing is for an operator to see, not a reason to stop serving everything
else; they mark the service "degraded".
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core import local_model
from core.db import session_scope
from core.models import ConnectionStatus, Dag, Goal, GoalStatus, McpServer, Provider
from core.settings import Settings
from services.dags import schedule_id as dag_schedule_id
from services.held_runs import held_runs
from services.waiting import live_pollers

CHECK_TIMEOUT_S = 5.0
REQUIRED = ("database", "temporal", "worker")
TemporalClient = Callable[[], Awaitable[Client]]
"""Gives the caller's Temporal client, connecting on first use (raises when unreachable)."""


async def _database(settings: Settings) -> dict[str, Any]:
    async with session_scope(settings) as session:
        await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {"ok": True}


async def _temporal(client: Client, settings: Settings) -> dict[str, Any]:
    await client.service_client.check_health()
    return {"ok": True, "address": settings.temporal_target}


async def _worker(client: Client, settings: Settings) -> dict[str, Any]:
    pollers = await live_pollers(client, settings)
    if not pollers:
        return {"ok": False, "error": f"no worker is polling task queue {settings.task_queue!r}"}
    return {"ok": True, "pollers": len(pollers)}


async def _providers(settings: Settings) -> dict[str, Any]:
    """Each active provider as its last validation left it; not ok when one of them failed."""
    async with session_scope(settings) as session:
        query = select(Provider).where(col(Provider.is_active)).order_by(col(Provider.id))
        rows = (await session.exec(query)).all()
    listed = [
        {
            "id": p.id,
            "name": p.name,
            "kind": p.kind,
            "connection_status": p.connection_status,
            "last_validated_at": p.last_validated_at.isoformat() if p.last_validated_at else None,
            "last_error": (p.last_error or "")[:200] or None,
        }
        for p in rows
    ]
    failed = [p.name for p in rows if p.connection_status == ConnectionStatus.error]
    report: dict[str, Any] = {"ok": not failed, "active": len(listed), "providers": listed}
    if failed:
        report["error"] = f"last validation failed for: {', '.join(failed)}"
    return report


async def _mcp_servers(settings: Settings) -> dict[str, Any]:
    """Each registered MCP server as its last check or call left it (listing, refresh, a worker's
    attempt to reach it); not ok when one could not be reached. Nothing is started here."""
    async with session_scope(settings) as session:
        rows = (await session.exec(select(McpServer).order_by(col(McpServer.id)))).all()
    listed = [
        {
            "id": s.id,
            "name": s.name,
            "transport": s.transport,
            "reachable": s.last_error is None,
            "tools": len(s.tools),
            "last_error": (s.last_error or "")[:200] or None,
        }
        for s in rows
    ]
    failed = [s.name for s in rows if s.last_error is not None]
    report: dict[str, Any] = {"ok": not failed, "registered": len(listed), "servers": listed}
    if failed:
        report["error"] = f"last attempt failed for: {', '.join(failed)}"
    return report


async def _schedules(client: Client, settings: Settings) -> dict[str, Any]:
    """Every goal and DAG with a cron has its Temporal Schedule, paused exactly when the goal is
    not active (a missing schedule means its runs silently never happen)."""
    async with session_scope(settings) as session:
        goals = (await session.exec(select(Goal).where(col(Goal.schedule).is_not(None)))).all()
        dags = (await session.exec(select(Dag).where(col(Dag.schedule).is_not(None)))).all()
    expected: dict[str, bool | None] = {g.schedule_id or "": g.status != GoalStatus.active for g in goals}
    expected.update({dag_schedule_id(d.id or 0): None for d in dags})

    async def problem(schedule_id: str, paused: bool | None) -> str | None:
        try:
            described = await client.get_schedule_handle(schedule_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return f"{schedule_id} is missing"
            raise
        if paused is not None and described.schedule.state.paused != paused:
            return f"{schedule_id} is {'paused' if described.schedule.state.paused else 'running'}"
        return None

    found = await asyncio.gather(*(problem(sid, paused) for sid, paused in sorted(expected.items())))
    problems = [p for p in found if p is not None]
    report: dict[str, Any] = {"ok": not problems, "expected": len(expected)}
    if problems:
        report["error"] = "; ".join(problems[:20])
    return report


async def _local_model(settings: Settings) -> dict[str, Any]:
    """Whether the embedded model answers (a run that needs it retries until it is up)."""
    if settings.llm_provider != "local":
        return {"ok": True, "enabled": False}
    url = local_model.base_url(settings)
    report: dict[str, Any] = {"ok": True, "enabled": True, "base_url": url, "model": local_model.MODEL_NAME}
    report["serving"] = await local_model.answers(settings, timeout_s=CHECK_TIMEOUT_S - 1)
    if not report["serving"]:
        report["ok"] = False
        report["error"] = "not answering yet (loading, or `python -m core.local_model` is not running)"
    return report


async def _guard(name: str, check: Awaitable[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    try:
        return name, await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except Exception as exc:  # readiness reports every failure instead of raising it
        return name, {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


async def _with_temporal(
    temporal: TemporalClient, settings: Settings
) -> tuple[Client | None, dict[str, Any]]:
    try:
        client = await asyncio.wait_for(temporal(), CHECK_TIMEOUT_S)
        return client, await asyncio.wait_for(_temporal(client, settings), CHECK_TIMEOUT_S)
    except Exception as exc:
        return None, {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


async def readiness(settings: Settings, temporal: TemporalClient) -> dict[str, Any]:
    """Every part's outcome. status: "ok", "degraded" (an informational part failed, named in
    `degraded`) or "unavailable" (a required part failed, named in `failing`)."""
    (client, temporal_report), local = await asyncio.gather(
        _with_temporal(temporal, settings),
        asyncio.gather(
            _guard("database", _database(settings)),
            _guard("providers", _providers(settings)),
            _guard("mcp_servers", _mcp_servers(settings)),
            _guard("local_model", _local_model(settings)),
        ),
    )
    checks = dict(local)
    checks["temporal"] = temporal_report
    if client is not None:
        checks.update(
            await asyncio.gather(
                _guard("worker", _worker(client, settings)),
                _guard("schedules", _schedules(client, settings)),
                _guard("held_runs", held_runs(client)),
            )
        )
    else:
        checks["worker"] = {"ok": False, "error": "Temporal unreachable"}
        checks["schedules"] = {"ok": False, "error": "Temporal unreachable"}
        checks["held_runs"] = {"ok": False, "error": "Temporal unreachable"}
    failing = sorted(name for name in REQUIRED if not checks[name].get("ok"))
    degraded = sorted(
        name for name, result in checks.items() if name not in REQUIRED and not result.get("ok")
    )
    status = "unavailable" if failing else "degraded" if degraded else "ok"
    return {"status": status, "failing": failing, "degraded": degraded, "checks": checks}
