"""`write_artifact` and `read_artifact`: named files under ARTIFACTS_DIR."""

from typing import Any

from pydantic import Field

from activities.artifacts import activity_origin
from activities.tools.base import ToolError, ToolInput, make_tool
from contracts.tools import ARTIFACT_NAME_INVALID, ARTIFACT_NOT_FOUND
from core.db import session_scope
from core.settings import get_settings
from services import artifacts as store
from services.errors import Invalid, NotFound

MAX_READ_CHARS = 1_000_000


ARTIFACT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_ +=@,-]*(\.[A-Za-z0-9_ +=@,-]+)*$"
"""A plain file name: no separators, no NUL, no '..'. In the JSON schema too, so a DAG spec with a
bad name is refused before anything runs (and a planner's grammar cannot produce one). Only in the
schema: at run time `check_name` refuses with its precise ArtifactNameInvalid."""


class WriteArtifactInput(ToolInput):
    """A plain file name (no directories) and its text content; an existing one is replaced."""

    name: str = Field(
        min_length=1, max_length=store.MAX_NAME_LENGTH, json_schema_extra={"pattern": ARTIFACT_NAME_PATTERN}
    )
    content: str = Field(max_length=store.MAX_ARTIFACT_BYTES)


class ReadArtifactInput(ToolInput):
    """The name of an artifact to read as text."""

    name: str = Field(
        min_length=1, max_length=store.MAX_NAME_LENGTH, json_schema_extra={"pattern": ARTIFACT_NAME_PATTERN}
    )


async def write_artifact(args: WriteArtifactInput) -> dict[str, Any]:
    settings = get_settings()
    workflow_id, node_id = activity_origin()
    try:
        async with session_scope(settings) as session:
            row = await store.save_artifact(
                session,
                settings,
                name=args.name,
                content=args.content,
                workflow_id=workflow_id,
                node_id=node_id,
            )
    except store.ArtifactNameInvalid as exc:
        raise ToolError(str(exc), kind=ARTIFACT_NAME_INVALID) from None
    except Invalid as exc:
        raise ToolError(str(exc)) from None
    return {
        "name": row.name,
        "size_bytes": row.size_bytes,
        "sha256": row.sha256,
        "content_type": row.content_type,
    }


async def read_artifact(args: ReadArtifactInput) -> str:
    settings = get_settings()
    try:
        async with session_scope(settings) as session:
            _, data = await store.read_artifact(session, settings, args.name)
    except store.ArtifactNameInvalid as exc:
        raise ToolError(str(exc), kind=ARTIFACT_NAME_INVALID) from None
    except NotFound as exc:
        raise ToolError(str(exc), kind=ARTIFACT_NOT_FOUND) from None
    return data.decode("utf-8", errors="replace")[:MAX_READ_CHARS]


WRITE_ARTIFACT = make_tool(
    name="write_artifact",
    description="Save text as a named artifact file (replacing one of the same name).",
    input_model=WriteArtifactInput,
    impl=write_artifact,
)
READ_ARTIFACT = make_tool(
    name="read_artifact",
    description="Read a named artifact file as text.",
    input_model=ReadArtifactInput,
    impl=read_artifact,
)
