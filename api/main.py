"""The FastAPI app: it only starts, signals and queries workflows and edits configuration."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DataError, IntegrityError
from temporalio.service import RPCError

from api import mcp_endpoint
from api.deps import require_token
from api.errors import declare_errors
from api.json_guard import JsonGuard
from api.limits import BodySizeLimit
from api.routes import (
    agents,
    artifacts,
    codec,
    config,
    dag_executions,
    dags,
    experiments,
    goals,
    health,
    mcp_servers,
    memories,
    messages,
    metrics,
    providers,
    runs,
    stats,
    task,
    tasks,
    telegram,
    tools,
    webapp,
    workflows,
    ws,  # WS /api/v1/ws
)
from api.unknown_fields import refuse_unknown_fields
from core import observability
from core.crypto import CryptoError
from core.db import dispose_engines, session_scope
from core.errors import Conflict, DomainError, Invalid, NotFound, Upstream
from core.gc_tuning import freeze_startup_heap
from core.logs import redact_access_log, setup_logging
from core.metrics import HttpMetrics, enable_temporal_metrics
from core.settings import Settings, get_settings
from core.temporal import connect
from services.defaults import ensure_defaults
from services.realtime import close_hub
from services.temporal_errors import rpc_error

log = logging.getLogger("goalflow.api")

_STATUS: dict[type[DomainError], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    Invalid: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    if isinstance(exc, Upstream):
        return JSONResponse({"detail": str(exc), "error": exc.kind}, status_code=exc.status_code)
    code = next(c for cls, c in _STATUS.items() if isinstance(exc, cls))
    return JSONResponse({"detail": str(exc)}, status_code=code)


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    # A uniqueness race lost to a concurrent request: the state changed under the caller.
    log.info("integrity error: %s", type(exc).__name__)
    return JSONResponse({"detail": "conflicts with the current state; retry"}, status_code=409)


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    # The database refused a value validation let through (a NUL character, an out-of-range number).
    log.info("data error: %s", type(getattr(exc, "orig", exc)).__name__)
    return JSONResponse(
        {"detail": "a value is out of range for the database or holds a NUL character"},
        status_code=422,
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    # FastAPI's default answer echoes each bad `input`, which can be an API key: leave it out.
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def _temporal_rpc_error(request: Request, exc: Exception) -> JSONResponse:
    # A Temporal call no service mapped (a run deleted between two reads, Temporal going away):
    # answer by its gRPC status instead of a 500.
    assert isinstance(exc, RPCError)
    return await _domain_error(request, rpc_error(exc, what="the Temporal call"))


async def _crypto_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("secret handling failed: %s", exc)
    return JSONResponse({"detail": "server cannot handle stored secrets"}, status_code=500)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings."""
    settings = settings or get_settings()
    redact_access_log()  # a token sent as ?token= never reaches the access log

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.temporal = None
        enable_temporal_metrics()  # the Temporal client's own metrics join /metrics
        try:
            app.state.temporal = await connect(settings)
        except RuntimeError:
            # The API still serves config and readiness (503 naming Temporal) while it is down.
            log.warning("Temporal at %s unreachable at start-up", settings.temporal_target)
        try:  # the LLM_PROVIDER provider and the default agents, idempotently
            async with session_scope(settings) as session:
                await ensure_defaults(session, settings)
        except Exception as exc:  # an unmigrated or unreachable DB: readiness names it
            log.warning("default provider and agents not registered: %s", type(exc).__name__)
        freeze_startup_heap()
        async with mcp_sessions.run():  # the MCP endpoint's transport (api/mcp_endpoint.py)
            yield
        await close_hub(app.state)  # the real-time hub of WS /api/v1/ws
        await dispose_engines()

    # /docs and /redoc load Swagger UI and ReDoc from the package, not a CDN: they work offline.
    app = FastAPIOffline(
        title="goalflow",
        version="0.1.0",
        description="Durable AI-agent work on Temporal.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.temporal = None
    app.add_middleware(JsonGuard)  # depth, NUL and non-finite numbers: inside the size cap
    app.add_middleware(BodySizeLimit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "X-Namespace"],
        )
    # After CORS_ORIGINS' middleware, so outside it: the Web UI's codec calls are answered first.
    app.add_middleware(codec.WebUiCors, origins=codec.web_ui_origins(settings))
    app.add_middleware(HttpMetrics)
    observability.instrument_api(app, settings)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(CryptoError, _crypto_error)
    app.add_exception_handler(RPCError, _temporal_rpc_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)

    for public in (health, config, telegram, webapp, codec):
        declare_errors(public.router)  # the statuses each route can answer, in the OpenAPI schema
    app.include_router(health.router)
    app.include_router(config.router)
    app.include_router(telegram.router)  # its own auth: Telegram's secret token header
    app.include_router(webapp.router)  # its own auth: Telegram-signed initData
    app.include_router(codec.router)  # its own auth: the bearer token or the codec cookie
    app.include_router(ws.router)  # WS /api/v1/ws: checks the token itself before accepting
    # The token first (a stranger gets a 401, not a list of fields), then typos in the body.
    protected = [Depends(require_token), Depends(refuse_unknown_fields)]
    for module in (
        providers,
        agents,
        dags,
        dag_executions,
        experiments,
        tools,
        mcp_servers,
        artifacts,
        goals,
        runs,
        memories,
        messages,
        task,
        tasks,
        stats,
        workflows,
        metrics,
    ):
        declare_errors(module.router, protected=True)
        app.include_router(module.router, dependencies=protected)
    mcp_sessions = mcp_endpoint.mount(app)  # /api/v1/mcp, behind the same token; not in OpenAPI
    return app


def main() -> None:
    """Serve with uvicorn on API_PORT."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # JSON logs: uvicorn's loggers propagate to ours instead of printing their own lines.
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
    )


if __name__ == "__main__":
    main()
