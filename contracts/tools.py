"""What workflows need to know about tools: names, how to run them, and their result shape.

The tool implementations (activities) live in `activities/tools/`; this module is pure data so
DagWorkflow can decide, inside the sandbox, how to schedule each tool.
"""

import json
from typing import Any

from pydantic import BaseModel, Field

from contracts.usage import TokenUsage

OUTPUT_INLINE_LIMIT = 16 * 1024
"""Tool outputs whose JSON is larger than this go to an artifact and travel by reference."""

USAGE_METADATA_KEY = "goalflow_usage"
"""Key under which a tool's own token usage travels in pydantic-ai tool-return metadata."""

PREVIEW_CHARS = 200
"""How much of an output node status, events and artifact references show (the one length)."""

ARTIFACT_REF_PREFIX = "artifact://"
"""A string input equal to `artifact://<name>` is replaced by that artifact's content in the tool."""


class ToolInfo(BaseModel):
    """How DagWorkflow schedules a tool: its activity name, and whether it is cheap enough to run
    as a local activity (pure computation, no I/O, milliseconds)."""

    name: str
    local: bool = False
    timeout_s: float = 60.0


class ToolResult(BaseModel):
    """Every tool activity returns this: the output inline, or a reference when it is large."""

    output: Any = None
    artifact: str | None = None
    preview: str = ""
    size_bytes: int = 0
    usage: TokenUsage = TokenUsage()


BUILTIN_TOOLS: dict[str, ToolInfo] = {
    info.name: info
    for info in (
        ToolInfo(name="noop", local=True, timeout_s=10),
        ToolInfo(name="calculator", local=True, timeout_s=10),
        ToolInfo(name="current_time", local=True, timeout_s=10),
        ToolInfo(name="http_request", timeout_s=60),
        ToolInfo(name="write_artifact", timeout_s=30),
        ToolInfo(name="read_artifact", timeout_s=30),
        ToolInfo(name="remember", timeout_s=30),
        ToolInfo(name="recall", timeout_s=30),
        ToolInfo(name="run_agent", timeout_s=600),
    )
}


class ToolDescription(BaseModel):
    """A registered tool as `GET /api/v1/tools` lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    local: bool
    timeout_s: float
    server: str | None = None
    """The MCP server that offers it (`<server>__<tool>`); null for a built-in tool."""
    annotations: dict[str, Any] | None = None
    """An MCP tool's hints (read-only, destructive, idempotent, open world)."""
    needs_approval: bool = False
    """Whether a call waits for a person (an MCP tool that may destroy, by its server's setting)."""


class AgentToolDeps(BaseModel):
    """The deps every `goalflow_agent` run carries: which registry tools this run may offer the
    model (the agent version's `tools` list), and how deeply agents are nested through
    `run_agent` so a tool cannot recurse forever."""

    tools: list[str] = []
    depth: int = Field(default=0, ge=0)
    live: str | None = None
    """The activity-id prefix of the DAG node (`<node>-<attempt>-agent-<try>`) whose text this
    run publishes as it is written; None: the run's text is not published."""


# Typed failure names of tools (the `type` of their non-retryable ApplicationErrors).
TOOL_INPUT_INVALID = "ToolInputInvalid"
TOOL_UNKNOWN = "ToolUnknown"
CALCULATOR_REJECTED = "CalculatorRejected"
TIMEZONE_INVALID = "TimezoneInvalid"
URL_INVALID = "UrlInvalid"
HTTP_DESTINATION_BLOCKED = "HttpDestinationBlocked"
HTTP_TOO_MANY_REDIRECTS = "HttpTooManyRedirects"
HTTP_REQUEST_FAILED = "HttpRequestFailed"
HTTP_OUTCOME_UNKNOWN = "HttpOutcomeUnknown"
"""A non-idempotent request may have reached the server (timeout, dropped connection, or an earlier
attempt that never recorded its answer); it is not sent again, the node decides what next."""
ARTIFACT_NAME_INVALID = "ArtifactNameInvalid"
ARTIFACT_NOT_FOUND = "ArtifactNotFound"
AGENT_DEPTH_EXCEEDED = "AgentDepthExceeded"


def preview_of(value: Any) -> str:
    """A short, human-readable start of a value for status, events and artifact references."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:PREVIEW_CHARS]
