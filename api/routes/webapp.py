"""The run page: the Telegram Web App, and the same page in an ordinary browser for a token holder.

One page (api/static/webapp.html), two ways in. `GET /webapp` is the Telegram Web App (the bot's
menu button opens it): its data calls carry the `initData` Telegram signed for the user who opened
it, in the `X-Telegram-Init-Data` header: a valid signature, not older than
TELEGRAM_WEBAPP_MAX_AGE_S, from an allowed user. `GET /webapp/browser` is the same page for a
browser: without the login cookie it redirects to `/webapp/login`, where the API token is given
once (as for the codec, api/routes/codec.py, whose cookie value it shares: derived from the token,
never the token) and the browser comes back to the page. The cookie is HttpOnly, SameSite=Strict
and sent to `/webapp` only; the page's data calls then go to the same `/webapp/api/...` routes
with it (the REST API keeps taking bearer tokens only). The login also gives the codec cookie, so
the Temporal Web UI the page links to can decode payloads in that browser.

The page lists goals and their runs, and draws a run's DAG execution as a graph whose nodes follow
the execution's event stream, with running agent nodes' text as it is written and approve/reject
buttons for nodes that wait for a person. The data routes answer from the same services as the
REST API; a decision is refused (403) when the browser says the request came from another site.
"""

import html
from collections.abc import AsyncIterable
from pathlib import Path as FilePath
from string import Template
from typing import Annotated
from urllib.parse import quote

from aiogram.utils.web_app import WebAppUser
from fastapi import APIRouter, Depends, Form, Header, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel

from api.deps import MAX_DB_ID, SessionDep, SettingsDep, TemporalDep
from api.errors import errors
from api.routes import codec
from api.routes.dag_executions import execution_events
from api.unknown_fields import refuse_unknown_fields
from contracts.dag import ApprovalDecision, DagStatus
from contracts.dag_executions import ExecutionGraph
from contracts.goals import GoalProgress
from contracts.runs import RunDetail, RunSummary
from core.errors import Conflict
from core.models import GoalPublic
from services import dag_executions, goals, runs
from services.telegram_webapp import InitDataRefused, execution_graph, verify

router = APIRouter(tags=["webapp"], responses=errors(401, 403))

STATIC = FilePath(__file__).resolve().parent.parent / "static"
PAGE = STATIC / "webapp.html"
LOGIN_PAGE = STATIC / "webapp_login.html"
PAGE_COOKIE = "goalflow_page"
COOKIE_PATH = "/webapp"
BROWSER_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",  # its buttons decide approvals: no other site may frame it
    # Nothing from elsewhere: no script, style or connection but this server's own.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
}

RUN_PATTERN = r"^goal-[A-Za-z0-9_.:-]{1,200}$"
EXECUTION_PATTERN = r"^dag-[A-Za-z0-9_.:-]{1,200}$"
NEXT_PATTERN = r"^browser(\?[A-Za-z0-9_.:=&%-]{1,600})?$"
"""Where a login may send the browser back to: the page itself, relative, with its query."""
RunId = Annotated[str, Path(pattern=RUN_PATTERN)]
ExecutionId = Annotated[str, Path(pattern=EXECUTION_PATTERN)]
Next = Annotated[str, Query(alias="next", pattern=NEXT_PATTERN, description="The page to come back to")]


def webapp_user(
    request: Request,
    settings: SettingsDep,
    init_data: Annotated[str | None, Header(alias="X-Telegram-Init-Data")] = None,
) -> WebAppUser | None:
    """The Telegram user the request's `initData` proves, or None for a browser holding the login
    cookie; 401 when it proves nothing, 403 for a Telegram user who is not allowed."""
    if init_data is None:
        if codec.session_ok(settings, request.cookies.get(PAGE_COOKIE)):
            return None
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing Telegram initData or browser login (log in with the API token at /webapp/login)",
        )
    try:
        return verify(settings, init_data)
    except InitDataRefused as exc:
        code = status.HTTP_403_FORBIDDEN if exc.forbidden else status.HTTP_401_UNAUTHORIZED
        raise HTTPException(code, str(exc)) from None


UserDep = Annotated[WebAppUser | None, Depends(webapp_user)]


def same_origin(sec_fetch_site: Annotated[str | None, Header()] = None) -> None:
    """A decision comes from the page itself: a browser that says another site sent it is refused
    (SameSite=Strict already keeps the cookie off such requests; this covers initData too)."""
    if sec_fetch_site not in (None, "same-origin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a decision must come from this page, not elsewhere")


class WebAppRun(BaseModel):
    run: RunDetail
    progress: GoalProgress | None


@router.get("/webapp", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The Web App page itself (public: it holds no data; its calls carry initData)."""
    return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-cache"})


@router.get("/webapp/browser", response_class=HTMLResponse, include_in_schema=False)
async def browser_page(
    request: Request,
    settings: SettingsDep,
    goal: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
    run: Annotated[str | None, Query(pattern=RUN_PATTERN)] = None,
    execution: Annotated[str | None, Query(pattern=EXECUTION_PATTERN)] = None,
) -> Response:
    """The page for a browser that logged in; the login first (and back here) for one that has not."""
    if not codec.session_ok(settings, request.cookies.get(PAGE_COOKIE)):
        back = "browser" + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"login?next={quote(back, safe='')}", status.HTTP_303_SEE_OTHER)
    return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers=BROWSER_HEADERS)


def _login_form(next_page: str, problem: str = "", code: int = status.HTTP_200_OK) -> HTMLResponse:
    text = Template(LOGIN_PAGE.read_text(encoding="utf-8")).substitute(
        next=html.escape(next_page), problem=html.escape(problem)
    )
    return HTMLResponse(text, status_code=code, headers=BROWSER_HEADERS)


@router.get("/webapp/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page(next_page: Next = "browser") -> HTMLResponse:
    """A form for the API token (the page itself reveals nothing)."""
    return _login_form(next_page)


@router.post("/webapp/login", response_class=HTMLResponse, include_in_schema=False)
async def login(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=1024)],
    next_page: Annotated[str, Form(alias="next", pattern=NEXT_PATTERN)] = "browser",
) -> Response:
    """Give the API token once: this browser gets the page's cookie (and the codec's), then the page."""
    if not codec.token_ok(settings, token):
        return _login_form(next_page, "That is not the API token.", status.HTTP_401_UNAUTHORIZED)
    value = codec.session_value(settings)
    assert value is not None  # a token matched, so one is configured
    response = RedirectResponse(next_page, status.HTTP_303_SEE_OTHER, headers={"Cache-Control": "no-store"})
    secure = request.url.scheme == "https"
    for name, path in ((PAGE_COOKIE, COOKIE_PATH), (codec.COOKIE, codec.PREFIX)):
        response.set_cookie(
            name,
            value,
            max_age=codec.COOKIE_MAX_AGE_S,
            path=path,
            httponly=True,
            samesite="strict",
            secure=secure,
        )
    return response


@router.post("/webapp/logout", include_in_schema=False)
async def logout() -> Response:
    """Forget this browser's login (the page's cookie and the codec's)."""
    response = RedirectResponse("login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(PAGE_COOKIE, path=COOKIE_PATH)
    response.delete_cookie(codec.COOKIE, path=codec.PREFIX)
    return response


@router.get("/webapp/api/goals")
async def list_goals(
    user: UserDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[GoalPublic]:
    """Goals, newest first."""
    rows = await goals.list_goals(session, status=None, limit=limit, offset=offset)
    return await goals.public_goals(session, rows)


@router.get("/webapp/api/runs")
async def list_runs(
    user: UserDep,
    client: TemporalDep,
    settings: SettingsDep,
    goal_id: Annotated[int | None, Query(ge=1, le=MAX_DB_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[RunSummary]:
    """Goal runs (of one goal, if given), newest first."""
    return await runs.list_runs(client, settings, goal_id=goal_id, status=None, limit=limit, offset=offset)


@router.get("/webapp/api/runs/{run_id}")
async def get_run(run_id: RunId, user: UserDep, client: TemporalDep, settings: SettingsDep) -> WebAppRun:
    """A run and its steps (plan, nodes with their live status, summary)."""
    detail = await runs.get_run(client, settings, run_id)
    try:
        progress = await runs.get_steps(client, run_id)
    except Conflict:
        progress = None
    return WebAppRun(run=detail, progress=progress)


@router.get("/webapp/api/executions/{execution_id}")
async def get_execution(
    execution_id: ExecutionId, user: UserDep, client: TemporalDep, settings: SettingsDep
) -> ExecutionGraph:
    """A DAG execution's nodes with their live state, the edges between them, each node's kind."""
    return await execution_graph(client, settings, execution_id)


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


DECIDING = [Depends(webapp_user), Depends(same_origin), Depends(refuse_unknown_fields)]
"""Who asks first (a stranger gets a 401, not a list of fields), then where from, then typos."""


@router.post("/webapp/api/executions/{execution_id}/approve", dependencies=DECIDING)
async def approve(execution_id: ExecutionId, decision: ApprovalDecision, client: TemporalDep) -> DagStatus:
    """Approve a node waiting for approval, as `POST /api/v1/dag-executions/{id}/approve`."""
    return await dag_executions.decide(client, execution_id, decision, approve=True)


@router.post("/webapp/api/executions/{execution_id}/reject", dependencies=DECIDING)
async def reject(execution_id: ExecutionId, decision: ApprovalDecision, client: TemporalDep) -> DagStatus:
    """Reject a node waiting for approval, as `POST /api/v1/dag-executions/{id}/reject`."""
    return await dag_executions.decide(client, execution_id, decision, approve=False)
