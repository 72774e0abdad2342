"""`POST /task`: run one agent on a prompt and attached files."""

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.accepted import WAITING_RESPONSES, WorkflowAccepted, accepted
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import error
from contracts.agent_task import (
    MAX_FILES,
    MAX_IMAGE_FILE_BYTES,
    MAX_TEXT_FILE_BYTES,
    AgentTaskResult,
    TaskAttachment,
)
from contracts.agents import AgentName
from services import tasks as service
from services.tasks import AttachmentTooLarge, AttachmentUnsupported, StartedTask, Upload
from services.waiting import StillRunning

router = APIRouter(prefix="/api/v1/task", tags=["task"])

READ_LIMIT = max(MAX_TEXT_FILE_BYTES, MAX_IMAGE_FILE_BYTES) + 1


class TaskResponse(AgentTaskResult):
    workflow_id: str


class TaskStarted(BaseModel):
    workflow_id: str
    status: str = "running"
    attachments: list[TaskAttachment] = []


async def _read(files: list[UploadFile]) -> list[Upload]:
    if len(files) > MAX_FILES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"at most {MAX_FILES} files")
    # Read one byte past the largest limit: enough to know a file is too large.
    return [
        Upload(filename=f.filename or "upload", content_type=f.content_type, data=await f.read(READ_LIMIT))
        for f in files
    ]


@router.post(
    "",
    response_model=TaskResponse,
    responses={
        **WAITING_RESPONSES,
        202: {
            "model": TaskStarted | WorkflowAccepted,
            "description": "started (`wait=false`), or still running after WAIT_TIMEOUT_S",
        },
        413: error(413, "a file, or all of them together, is too large"),
        415: error(415, "a file is neither UTF-8 text nor a PNG/JPEG/GIF/WebP image"),
    },
)
async def run_task(
    agent: Annotated[AgentName, Form()],
    prompt: Annotated[str, Form(min_length=1, max_length=100_000)],
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI copies defaults)
    files_brackets: Annotated[list[UploadFile], File(alias="files[]")] = [],  # noqa: B006
    wait: Annotated[bool, Form()] = True,
) -> TaskResponse | JSONResponse:
    """Files become artifacts; text goes to the agent as text, images as binary content."""
    uploads = await _read([*files, *files_brackets])
    try:
        outcome = await service.run_task(
            session, client, settings, agent_name=agent, prompt=prompt, uploads=uploads, wait=wait
        )
    except AttachmentTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
    except AttachmentUnsupported as exc:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(exc)) from None
    if isinstance(outcome, StartedTask):
        started = TaskStarted.model_validate(outcome, from_attributes=True)
        return JSONResponse(started.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    workflow_id, result = outcome
    if isinstance(result, StillRunning):
        return accepted(result, settings)
    return TaskResponse(**result.model_dump(), workflow_id=workflow_id)
