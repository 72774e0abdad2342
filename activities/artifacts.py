"""Artifacts seen from activities: large outputs leave as references, references come back in.

Workflow history only ever holds `artifact://<name>` and a short preview; the content is read and
written here, inside activities, through `storage.artifacts`.
"""

import uuid
from typing import Any

from pydantic_core import to_json
from temporalio import activity

from contracts.tools import (
    ARTIFACT_NAME_INVALID,
    ARTIFACT_NOT_FOUND,
    ARTIFACT_REF_PREFIX,
    OUTPUT_INLINE_LIMIT,
    PREVIEW_CHARS,
    TOOL_INPUT_INVALID,
    ToolResult,
)
from contracts.usage import TokenUsage
from core.db import session_scope
from core.errors import NotFound
from core.settings import get_settings
from storage import artifacts as store

MAX_REFERENCES = 50


class ArtifactReferenceError(Exception):
    """A reference names an artifact that is invalid or missing; `kind` is the failure type."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def reference(name: str) -> str:
    """The string that stands for an artifact's content in tool inputs and DAG templates."""
    return f"{ARTIFACT_REF_PREFIX}{name}"


def _references(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        if value.startswith(ARTIFACT_REF_PREFIX):
            found.add(value[len(ARTIFACT_REF_PREFIX) :])
    elif isinstance(value, dict):
        for item in value.values():
            _references(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _references(item, found)


def _substitute(value: Any, contents: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith(ARTIFACT_REF_PREFIX):
        return contents[value[len(ARTIFACT_REF_PREFIX) :]]
    if isinstance(value, dict):
        return {key: _substitute(item, contents) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_substitute(item, contents) for item in value]
    return value


def has_references(value: Any) -> bool:
    """Whether any string in a JSON-like value is an `artifact://` reference."""
    found: set[str] = set()
    _references(value, found)
    return bool(found)


async def resolve_references(value: Any) -> Any:
    """Replace every string equal to `artifact://<name>` with that artifact's text content."""
    names: set[str] = set()
    _references(value, names)
    if not names:
        return value
    if len(names) > MAX_REFERENCES:
        raise ArtifactReferenceError(
            f"more than {MAX_REFERENCES} artifact references in one input", kind=TOOL_INPUT_INVALID
        )
    settings = get_settings()
    contents: dict[str, str] = {}
    async with session_scope(settings) as session:
        for name in sorted(names):
            try:
                _, data = await store.read_artifact(session, settings, name)
            except store.ArtifactNameInvalid as exc:
                raise ArtifactReferenceError(str(exc), kind=ARTIFACT_NAME_INVALID) from None
            except NotFound as exc:
                raise ArtifactReferenceError(str(exc), kind=ARTIFACT_NOT_FOUND) from None
            contents[name] = data.decode("utf-8", errors="replace")
    return _substitute(value, contents)


def activity_origin() -> tuple[str | None, str | None]:
    """(workflow id, activity id) of the running activity, for an artifact's metadata."""
    if not activity.in_activity():
        return None, None
    info = activity.info()
    return info.workflow_id or None, info.activity_id


def _spill_name(tool: str, *, is_text: bool) -> tuple[str, str | None, str | None]:
    """(artifact name, workflow id, node id) for a tool's large output."""
    suffix = ".txt" if is_text else ".json"
    if activity.in_activity():
        info = activity.info()
        workflow_id = info.workflow_id or ""
        raw = f"{workflow_id}-{(info.workflow_run_id or '')[:8]}-{info.activity_id}-{tool}"
        return store.safe_name(raw, suffix=suffix), workflow_id or None, info.activity_id
    return store.safe_name(f"{tool}-{uuid.uuid4().hex}", suffix=suffix), None, None


async def tool_result(tool: str, output: Any, usage: TokenUsage | None = None) -> ToolResult:
    """The ToolResult for an output: inline when small, else stored as an artifact and referenced.

    A text output is stored as the text itself (so `artifact://` gives back the same string);
    anything else as its JSON.
    """
    encoded = to_json(output)
    usage = usage or TokenUsage()
    if len(encoded) <= OUTPUT_INLINE_LIMIT:
        return ToolResult(output=output, size_bytes=len(encoded), usage=usage)
    is_text = isinstance(output, str)
    data = output.encode() if is_text else encoded
    name, workflow_id, node_id = _spill_name(tool, is_text=is_text)
    settings = get_settings()
    async with session_scope(settings) as session:
        await store.save_artifact(
            session,
            settings,
            name=name,
            content=data,
            content_type=store.TEXT_DEFAULT if is_text else "application/json",
            workflow_id=workflow_id,
            node_id=node_id,
        )
    preview = data[: PREVIEW_CHARS * 4].decode("utf-8", errors="ignore")[:PREVIEW_CHARS]
    return ToolResult(artifact=name, preview=preview, size_bytes=len(data), usage=usage)
