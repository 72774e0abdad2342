"""`POST /task` side effects: reading the uploaded attachments back from their artifacts."""

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeats
from contracts.agent_task import AttachmentContent, TaskAttachment
from core.db import session_scope
from core.errors import NotFound
from core.settings import get_settings
from storage.artifacts import read_artifact

ATTACHMENT_MISSING = "AttachmentMissing"


@activity.defn
@heartbeats
async def load_task_attachments(attachments: list[TaskAttachment]) -> list[AttachmentContent]:
    """Each attachment's content: text decoded as UTF-8, images as bytes."""
    settings = get_settings()
    loaded: list[AttachmentContent] = []
    async with session_scope(settings) as session:
        for item in attachments:
            try:
                _, data = await read_artifact(session, settings, item.artifact)
            except NotFound as exc:
                raise ApplicationError(str(exc), type=ATTACHMENT_MISSING, non_retryable=True) from None
            content = AttachmentContent(
                artifact=item.artifact,
                filename=item.filename,
                media_type=item.media_type,
                kind=item.kind,
            )
            if item.kind == "text":
                content.text = data.decode("utf-8", errors="replace")
            else:
                content.data = data
            loaded.append(content)
    return loaded
