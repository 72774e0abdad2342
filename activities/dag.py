"""Side effects DagWorkflow needs for itself: keeping large node outputs out of history, and
reading an artifact an agent prompt references.

Artifacts are plain files under `ARTIFACTS_DIR`; the name is derived from the workflow id and
node id, so a retried activity overwrites the same file instead of leaving orphans.
"""

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.dag import NodeOutput
from core.settings import get_settings
from workflows.dag_state import preview_of

PROMPT_ARTIFACT_LIMIT = 200_000
"""Characters of an artifact pasted into an agent prompt; the rest is cut with a marker."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OffloadInput(BaseModel):
    node_id: str
    value: Any


def _artifact_path(name: str) -> Path:
    root = get_settings().artifacts_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise ApplicationError(f"bad artifact name {name!r}", type="ArtifactNotFound", non_retryable=True)
    return path


@activity.defn(name="dag_offload_output")
async def offload_output(params: OffloadInput) -> NodeOutput:
    """Write a large node output to an artifact and hand back only its reference and preview."""
    info = activity.info()
    is_text = isinstance(params.value, str)
    name = _UNSAFE.sub("_", f"{info.workflow_id}-{params.node_id}") + (".txt" if is_text else ".json")
    text = params.value if is_text else json.dumps(params.value, ensure_ascii=False, default=str)
    path = _artifact_path(name)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(path.write_text, text, "utf-8")
    return NodeOutput(artifact=name, preview=preview_of(params.value))


@activity.defn(name="dag_load_artifact")
async def load_artifact_text(name: str) -> str:
    """An artifact's text for an agent prompt, cut to a size a prompt and history can hold."""
    path = _artifact_path(name)
    try:
        text = await asyncio.to_thread(path.read_text, "utf-8")
    except FileNotFoundError:
        raise ApplicationError(
            f"artifact {name!r} does not exist", type="ArtifactNotFound", non_retryable=True
        ) from None
    if len(text) > PROMPT_ARTIFACT_LIMIT:
        return text[:PROMPT_ARTIFACT_LIMIT] + "\n[... truncated]"
    return text
