"""`write_artifact` and `read_artifact`: named files under ARTIFACTS_DIR."""

from typing import Any

from activities.artifacts import activity_origin
from activities.tools.base import ToolError, make_tool
from contracts.tool_inputs import ReadArtifactInput, WriteArtifactInput
from contracts.tools import ARTIFACT_NAME_INVALID, ARTIFACT_NOT_FOUND
from core.db import session_scope
from core.errors import Invalid, NotFound
from core.settings import get_settings
from storage import artifacts as store

MAX_READ_CHARS = 1_000_000


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
