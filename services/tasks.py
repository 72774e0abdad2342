"""`POST /task`: one agent on a prompt and attached files, as AgentTaskWorkflow.

Uploads are checked (type, size), stored as artifacts, and handed to the workflow by name.
"""

import mimetypes
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from contracts.agent_task import (
    IMAGE_MEDIA_TYPES,
    MAX_FILES,
    MAX_IMAGE_FILE_BYTES,
    MAX_TEXT_FILE_BYTES,
    MAX_TOTAL_BYTES,
    RUN_KIND_TASK,
    TEXT_MEDIA_TYPES,
    AgentTaskInput,
    AgentTaskResult,
    AttachmentKind,
    TaskAttachment,
)
from contracts.search import search_attributes
from contracts.workflow_names import AGENT_TASK_WORKFLOW
from core.errors import DomainError, Invalid
from core.settings import Settings
from services.agents import resolve_agent
from services.ids import short_id
from services.waiting import StillRunning, require_worker, wait_bounded
from storage.artifacts import safe_name, save_artifact

TASK_TIMEOUT = timedelta(minutes=10)

_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


class AttachmentTooLarge(DomainError):
    """An attachment (or all of them together) over the documented limits: 413."""


class AttachmentUnsupported(DomainError):
    """An attachment that is neither UTF-8 text nor a supported image: 415."""


@dataclass
class Upload:
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class StartedTask:
    """A task started without waiting; api/routes/task.py answers it as its TaskStarted."""

    workflow_id: str
    attachments: list[TaskAttachment]


def media_type_of(upload: Upload) -> str:
    """The declared type unless it is missing or generic; then a guess from the file name."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(upload.filename, strict=False)
    return guessed or "application/octet-stream"


def classify(upload: Upload) -> tuple[AttachmentKind, str]:
    """(kind, media type), or AttachmentUnsupported / AttachmentTooLarge saying why."""
    media_type = media_type_of(upload)
    size = len(upload.data)
    if media_type in IMAGE_MEDIA_TYPES:
        if not upload.data.startswith(_IMAGE_MAGIC[media_type]):
            raise AttachmentUnsupported(f"{upload.filename}: content is not a {media_type} image")
        if size > MAX_IMAGE_FILE_BYTES:
            raise AttachmentTooLarge(
                f"{upload.filename}: image of {size} bytes exceeds {MAX_IMAGE_FILE_BYTES} bytes"
            )
        return "image", media_type
    is_text = (
        media_type.startswith("text/")
        or media_type in TEXT_MEDIA_TYPES
        or media_type.endswith(("+json", "+xml"))
    )
    if not is_text:
        raise AttachmentUnsupported(
            f"{upload.filename}: unsupported type {media_type}; "
            f"send text files or {', '.join(sorted(IMAGE_MEDIA_TYPES))}"
        )
    if size > MAX_TEXT_FILE_BYTES:
        raise AttachmentTooLarge(
            f"{upload.filename}: text file of {size} bytes exceeds {MAX_TEXT_FILE_BYTES} bytes"
        )
    try:
        upload.data.decode("utf-8")
    except UnicodeDecodeError:
        raise AttachmentUnsupported(f"{upload.filename}: text files must be UTF-8") from None
    return "text", media_type


def check_uploads(uploads: list[Upload]) -> list[tuple[AttachmentKind, str]]:
    """Classify every upload and check the count and total size."""
    if len(uploads) > MAX_FILES:
        raise Invalid(f"at most {MAX_FILES} files per task")
    total = sum(len(u.data) for u in uploads)
    if total > MAX_TOTAL_BYTES:
        raise AttachmentTooLarge(f"attachments total {total} bytes, over {MAX_TOTAL_BYTES} bytes")
    return [classify(u) for u in uploads]


async def run_task(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    *,
    agent_name: str,
    prompt: str,
    uploads: list[Upload],
    wait: bool,
) -> StartedTask | tuple[str, AgentTaskResult | StillRunning]:
    """Store the files as artifacts and start the workflow; with `wait`, its (id, result) or
    StillRunning after the bounded wait. NoWorker (503) before anything is stored when no worker
    is there to run it."""
    kinds = check_uploads(uploads)
    agent = await resolve_agent(session, agent_name)
    await require_worker(client, settings)
    short = short_id()
    workflow_id = f"task-{agent.name}-{short}"
    attachments: list[TaskAttachment] = []
    for index, (upload, (kind, media_type)) in enumerate(zip(uploads, kinds, strict=True)):
        name = safe_name(f"task-{short}-{index}-{upload.filename}")
        artifact = await save_artifact(
            session,
            settings,
            name=name,
            content=upload.data,
            content_type=media_type,
            workflow_id=workflow_id,
            node_id=f"upload-{index}",
        )
        attachments.append(
            TaskAttachment(
                filename=upload.filename,
                artifact=artifact.name,
                media_type=media_type,
                size_bytes=len(upload.data),
                kind=kind,
            )
        )
    params = AgentTaskInput(agent_name=agent.name, prompt=prompt, attachments=attachments)
    handle = await client.start_workflow(
        AGENT_TASK_WORKFLOW,
        params,
        id=workflow_id,
        task_queue=settings.task_queue,
        execution_timeout=TASK_TIMEOUT,
        search_attributes=search_attributes(agent_name=agent.name, run_kind=RUN_KIND_TASK),
        static_summary=f"Task for {agent.name}: {prompt[:120]}",
        result_type=AgentTaskResult,
    )
    if not wait:
        return StartedTask(workflow_id=workflow_id, attachments=attachments)
    return workflow_id, await wait_bounded(handle, handle.result(), settings=settings)
