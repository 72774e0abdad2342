"""Types AgentTaskWorkflow (`POST /task`) and its activities share.

Attachments travel by artifact name; an activity loads their content. The content then appears
in the workflow's history twice (that activity's result, and the model-request activity's input,
where pydantic-ai records every message), so sizes are capped well under Temporal's 2 MB payload
limit: see the MAX_* constants.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.agents import AgentRunOutput

RUN_KIND_TASK = "task"

MAX_FILES = 10
MAX_TEXT_FILE_BYTES = 256 * 1024
MAX_IMAGE_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024
"""All attachments of one task together; an image is sent base64-encoded (4/3 larger)."""

TEXT_MEDIA_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/x-ndjson",
    }
)
IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

AttachmentKind = Literal["text", "image"]


class TaskAttachment(BaseModel):
    filename: str
    artifact: str
    media_type: str
    size_bytes: int
    kind: AttachmentKind


class AttachmentContent(BaseModel):
    """An attachment's content as the model gets it: text, or bytes (base64 in JSON)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    artifact: str
    filename: str
    media_type: str
    kind: AttachmentKind
    text: str | None = None
    data: bytes | None = None


class AgentTaskInput(BaseModel):
    agent_name: str
    prompt: str = Field(min_length=1, max_length=100_000)
    attachments: list[TaskAttachment] = Field(default=[], max_length=MAX_FILES)


class AgentTaskResult(AgentRunOutput):
    agent_name: str
    agent_version: int
    model: str
    attachments: list[TaskAttachment] = []
