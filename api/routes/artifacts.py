"""Artifacts: files tools and runs stored, newest first, and each file's content."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import FileResponse

from api.deps import PageDep, SessionDep, SettingsDep
from api.errors import error
from core.models import ArtifactPublic
from storage import artifacts as service

router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"])

PASSIVE_TYPES = (
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
)
"""Types a browser shows without running anything; every other type (HTML, SVG, XML, JS, ...)
is served as an attachment, because artifacts are written by LLMs and the API's origin also
serves the Telegram Web App."""
ARTIFACT_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def disposition_for(content_type: str) -> str:
    """`inline` for passive types, `attachment` for anything a browser could execute."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return "inline" if media_type in PASSIVE_TYPES else "attachment"


@router.get("")
async def list_artifacts(session: SessionDep, page: PageDep) -> list[ArtifactPublic]:
    """Artifact metadata, newest first."""
    rows = await service.list_artifacts(session, limit=page.limit, offset=page.offset)
    return [ArtifactPublic.model_validate(row) for row in rows]


@router.get(
    "/{filename}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        400: error(400, "The name is not a valid artifact name"),
    },
)
async def get_artifact(
    filename: Annotated[str, Path(max_length=1000)], session: SessionDep, settings: SettingsDep
) -> FileResponse:
    """The artifact's file with its content type; active types (HTML, SVG, ...) as attachments."""
    try:
        path = service.artifact_path(settings, filename)
    except service.ArtifactNameInvalid as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    row = await service.get_artifact(session, filename)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"artifact {filename!r} has no file")
    return FileResponse(
        path,
        media_type=row.content_type,
        filename=row.name,
        content_disposition_type=disposition_for(row.content_type),
        headers=ARTIFACT_HEADERS,
    )
