"""Readiness checks, each naming the part it covers."""

import asyncio
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, text
from sqlmodel import select
from temporalio.client import Client

from core import local_model
from core.db import session_scope
from core.models import ConnectionStatus, Provider
from core.settings import Settings
from core.temporal import connect
from services.waiting import live_pollers

CHECK_TIMEOUT_S = 5.0


async def _database(settings: Settings) -> dict[str, Any]:
    async with session_scope(settings) as session:
        await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {"ok": True}


async def _temporal(app: FastAPI, settings: Settings) -> dict[str, Any]:
    client: Client | None = app.state.temporal
    if client is None:
        client = await connect(settings)
        app.state.temporal = client
    await client.service_client.check_health()
    return {"ok": True, "address": settings.temporal_target}


async def _worker(client: Client, settings: Settings) -> dict[str, Any]:
    pollers = await live_pollers(client, settings)
    if not pollers:
        return {"ok": False, "error": f"no worker is polling task queue {settings.task_queue!r}"}
    return {"ok": True, "pollers": len(pollers)}


async def _providers(settings: Settings) -> dict[str, Any]:
    async with session_scope(settings) as session:
        rows = (
            await session.exec(
                select(Provider.connection_status, func.count())
                .where(Provider.is_active)
                .group_by(Provider.connection_status)
            )
        ).all()
    counts = {str(status): n for status, n in rows}
    # Informational: a provider that failed validation does not make the service unready.
    return {
        "ok": True,
        "active": sum(counts.values()),
        "errors": counts.get(ConnectionStatus.error, 0),
    }


async def _local_model(settings: Settings) -> dict[str, Any]:
    """Whether the embedded model answers. Informational like providers: the API and workflows
    are ready without it (a run that needs it retries its model requests until it is up)."""
    if settings.llm_provider != "local":
        return {"ok": True, "enabled": False}
    url = local_model.base_url(settings)
    report: dict[str, Any] = {"ok": True, "enabled": True, "base_url": url, "model": local_model.MODEL_NAME}
    report["serving"] = await local_model.answers(settings, timeout_s=CHECK_TIMEOUT_S - 1)
    if not report["serving"]:
        report["error"] = "not answering yet (loading, or `python -m core.local_model` is not running)"
    return report


async def _guard(name: str, check: Any) -> tuple[str, dict[str, Any]]:
    try:
        return name, await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except Exception as exc:  # readiness reports every failure instead of raising it
        return name, {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


async def readiness(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """Every check's outcome; status is "ok" only when all pass, else names what failed."""
    checks = dict(
        await asyncio.gather(
            _guard("database", _database(settings)),
            _guard("providers", _providers(settings)),
            _guard("local_model", _local_model(settings)),
            _guard("temporal", _temporal(app, settings)),
        )
    )
    client: Client | None = app.state.temporal
    if checks["temporal"]["ok"] and client is not None:
        checks["worker"] = (await _guard("worker", _worker(client, settings)))[1]
    else:
        checks["worker"] = {"ok": False, "error": "Temporal unreachable"}
    failing = sorted(name for name, result in checks.items() if not result.get("ok"))
    return {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": checks}
