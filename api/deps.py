"""Dependencies every route shares: settings, DB session, Temporal client, auth, pagination."""

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from core.db import session_scope
from core.settings import Settings
from core.temporal import connect


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (tests build apps with their own)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(settings: SettingsDep) -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with session_scope(settings) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_temporal(request: Request, settings: SettingsDep) -> Client:
    """The app's Temporal client, connected on first use if Temporal was down at start-up."""
    client: Client | None = request.app.state.temporal
    if client is None:
        try:
            client = await connect(settings)
        except RuntimeError as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"Temporal at {settings.temporal_target} is unreachable",
            ) from exc
        request.app.state.temporal = client
    return client


TemporalDep = Annotated[Client, Depends(get_temporal)]

_bearer = HTTPBearer(auto_error=False)


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer-token auth; constant-time comparison."""
    expected = settings.api_token.get_secret_value() if settings.api_token else None
    if (
        credentials is None
        or expected is None
        or not secrets.compare_digest(credentials.credentials.encode(), expected.encode())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


MAX_DB_ID = 2**31 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_DB_ID, description="Database id")]


class Page:
    """`limit` / `offset` query parameters with sane bounds."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


PageDep = Annotated[Page, Depends()]
