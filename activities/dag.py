"""Side effects DagWorkflow needs for itself: keeping large node outputs out of history, and
reading an artifact an agent prompt references.

Both go through `storage/artifacts.py`, like every other artifact: sanitised names, atomic
writes and a metadata row, so offloaded outputs are listed by `GET /artifacts` too. The name is
derived from the workflow id and node id, so a retried activity replaces the same artifact.
Both heartbeat (`STORE_HEARTBEAT_TIMEOUT`) so a cancelled or orphaned one stops in time.
"""

import json
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeats
from contracts.dag import NodeOutput
from contracts.tools import preview_of
from core.db import session_scope
from core.errors import DomainError, NotFound
from core.settings import get_settings
from storage import artifacts

PROMPT_ARTIFACT_LIMIT = 200_000
"""Characters of an artifact pasted into an agent prompt; the rest is cut with a marker."""

ARTIFACT_NOT_FOUND = "ArtifactNotFound"
ARTIFACT_INVALID = "ArtifactInvalid"


class OffloadInput(BaseModel):
    node_id: str
    value: Any


@activity.defn(name="dag_offload_output")
@heartbeats
async def offload_output(params: OffloadInput) -> NodeOutput:
    """Write a large node output to an artifact and hand back only its reference and preview."""
    info = activity.info()
    is_text = isinstance(params.value, str)
    text = params.value if is_text else json.dumps(params.value, ensure_ascii=False, default=str)
    settings = get_settings()
    try:
        name = artifacts.safe_name(
            f"{info.workflow_id}-{params.node_id}", suffix=".txt" if is_text else ".json"
        )
        async with session_scope(settings) as session:
            await artifacts.save_artifact(
                session,
                settings,
                name=name,
                content=text,
                workflow_id=info.workflow_id,
                node_id=params.node_id,
            )
    except DomainError as exc:  # too large or an unusable name: retrying cannot help
        raise ApplicationError(str(exc), type=ARTIFACT_INVALID, non_retryable=True) from None
    return NodeOutput(artifact=name, preview=preview_of(params.value))


@activity.defn(name="dag_load_artifact")
@heartbeats
async def load_artifact_text(name: str) -> str:
    """An artifact's text for an agent prompt, cut to a size a prompt and history can hold."""
    settings = get_settings()
    try:
        async with session_scope(settings) as session:
            _, data = await artifacts.read_artifact(session, settings, name)
    except NotFound as exc:
        raise ApplicationError(str(exc), type=ARTIFACT_NOT_FOUND, non_retryable=True) from None
    except DomainError as exc:
        raise ApplicationError(str(exc), type=ARTIFACT_INVALID, non_retryable=True) from None
    text = data.decode("utf-8", errors="replace")
    if len(text) > PROMPT_ARTIFACT_LIMIT:
        return text[:PROMPT_ARTIFACT_LIMIT] + "\n[... truncated]"
    return text
