"""The Telegram Web App: a page of runs and their nodes, live from the execution's event stream.

`GET /webapp` serves the page (it opens from the bot's menu button). Its data calls are
authenticated by the `initData` Telegram signed for the user who opened it, sent in the
`X-Telegram-Init-Data` header: a valid signature, not older than TELEGRAM_WEBAPP_MAX_AGE_S, from an
allowed user. They answer from the same services as the REST API.
"""

from collections.abc import AsyncIterable
from pathlib import Path as FilePath
from typing import Annotated

from aiogram.utils.web_app import WebAppUser
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel

from api.deps import SettingsDep, TemporalDep
from api.errors import errors
from api.routes.dag_executions import execution_events
from contracts.goals import GoalProgress
from contracts.runs import RunDetail, RunSummary
from core.errors import Conflict
from services import dag_executions, runs
from services.telegram_webapp import InitDataRefused, verify

router = APIRouter(tags=["webapp"], responses=errors(401, 403))

PAGE = FilePath(__file__).resolve().parent.parent / "static" / "webapp.html"

RunId = Annotated[str, Path(pattern=r"^goal-[A-Za-z0-9_.:-]{1,200}$")]
ExecutionId = Annotated[str, Path(pattern=r"^dag-[A-Za-z0-9_.:-]{1,200}$")]


def webapp_user(
    settings: SettingsDep,
    init_data: Annotated[str | None, Header(alias="X-Telegram-Init-Data")] = None,
) -> WebAppUser:
    """The Telegram user the request's `initData` proves; 401 when it proves nothing, 403 for
    someone not allowed."""
    try:
        return verify(settings, init_data)
    except InitDataRefused as exc:
        code = status.HTTP_403_FORBIDDEN if exc.forbidden else status.HTTP_401_UNAUTHORIZED
        raise HTTPException(code, str(exc)) from None


UserDep = Annotated[WebAppUser, Depends(webapp_user)]


class WebAppRun(BaseModel):
    run: RunDetail
    progress: GoalProgress | None


@router.get("/webapp", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The Web App page itself (public: it holds no data; its calls carry initData)."""
    return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-cache"})


@router.get("/webapp/api/runs")
async def list_runs(
    user: UserDep,
    client: TemporalDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[RunSummary]:
    """Goal runs, newest first."""
    return await runs.list_runs(client, settings, goal_id=None, status=None, limit=limit, offset=offset)


@router.get("/webapp/api/runs/{run_id}")
async def get_run(run_id: RunId, user: UserDep, client: TemporalDep, settings: SettingsDep) -> WebAppRun:
    """A run and its steps (plan, nodes with their live status, summary)."""
    detail = await runs.get_run(client, settings, run_id)
    try:
        progress = await runs.get_steps(client, run_id)
    except Conflict:
        progress = None
    return WebAppRun(run=detail, progress=progress)


async def _existing(execution_id: ExecutionId, user: UserDep, client: TemporalDep) -> str:
    """Resolve the execution before the stream starts: an unknown id is a 404, not an empty stream."""
    await dag_executions.describe(client, execution_id)
    return execution_id


@router.get("/webapp/api/executions/{execution_id}/events", response_class=EventSourceResponse)
async def events(
    execution_id: Annotated[str, Depends(_existing)],
    request: Request,
    client: TemporalDep,
    settings: SettingsDep,
    after: Annotated[int | None, Query(ge=-1)] = None,
) -> AsyncIterable[ServerSentEvent]:
    """The execution's events as SSE, exactly as `GET /api/v1/dag-executions/{id}/events`."""
    events = execution_events(execution_id, request, client, settings, last_event_id=None, after=after)
    async for event in events:
        yield event
