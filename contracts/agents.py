"""What workflows know about an agent: a pinned snapshot of one version, never a credential."""

import re
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from contracts.mcp import McpTool
from contracts.usage import TokenUsage

AgentName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", max_length=63)]
"""An agent's name: lowercase letters, digits, `_` and `-`, as it appears in URLs and DAG specs."""


MAX_FALLBACKS = 5
"""Fallback models an agent version may list: each is tried only after the one before failed for good."""


def _is_empty(value: Any) -> bool:
    return not value


class ModelRef(BaseModel):
    """A model on a provider: where an agent version falls back to when its own model fails for good."""

    provider_id: int = Field(ge=1, le=2**31 - 1)
    model: str = Field(min_length=1, max_length=200)

    @property
    def label(self) -> str:
        """`<provider_id>:<model>`, how answers and node states name the model."""
        return f"{self.provider_id}:{self.model}"


class ModelFailure(BaseModel):
    """A model that failed for good before another answered (or before the run gave up)."""

    model: str
    """`<provider_id>:<model>`."""
    error: str
    """`<failure type>: <message>`."""


DEFAULT_MAX_REQUESTS = 100
"""Model requests one run of a version may send unless the version says otherwise: enough for a
long tool loop (pydantic-ai's own default of 50 stopped an 80-call loop)."""
MAX_REQUESTS_CAP = 10_000
MAX_TOOL_CALLS_CAP = 100_000


def _unset(value: Any) -> bool:
    return value is None


class AgentSnapshot(BaseModel):
    """One agent version as resolved when a run started; later activations do not change it."""

    id: int
    name: str
    version: int
    provider_id: int
    model: str
    system_prompt: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[str] = []
    output_schema: dict[str, Any] | None = None
    # Left out when empty, so a snapshot without fallbacks is the payload it always was.
    fallbacks: list[ModelRef] = Field(default_factory=list, exclude_if=_is_empty)
    """Tried in order when the model fails for good (`workflows/agent_runs.py`)."""
    # Left out when unset: a snapshot pinned before these limits existed is the payload it was,
    # and its run keeps pydantic-ai's own limit (50 requests) on replay.
    max_requests: int | None = Field(default=None, exclude_if=_unset)
    """Model requests one run may send (`DEFAULT_MAX_REQUESTS` for versions made since)."""
    max_tool_calls: int | None = Field(default=None, exclude_if=_unset)
    """Tool calls one run may make; None: no limit but `max_requests`."""
    mcp_tools: list[McpTool] = Field(default_factory=list, exclude_if=_is_empty)
    """The MCP tools among `tools`, as their servers listed them when the version was pinned."""

    @property
    def model_id(self) -> str:
        """The id the model resolver turns into a provider-backed model inside the activity."""
        return f"goalflow:{self.provider_id}:{self.model}"

    @property
    def model_label(self) -> str:
        """`<provider_id>:<model>` of this version's own model."""
        return f"{self.provider_id}:{self.model}"

    def on_model(self, fallback: ModelRef) -> "AgentSnapshot":
        """This version run on a fallback model instead of its own (and with no fallbacks of its own)."""
        return self.model_copy(
            update={"provider_id": fallback.provider_id, "model": fallback.model, "fallbacks": []}
        )


class AgentTestInput(BaseModel):
    agent_id: int
    prompt: str = Field(min_length=1, max_length=100_000)


class AgentRunOutput(BaseModel):
    """The result of one agent run inside a workflow."""

    output: Any
    usage: TokenUsage
    execution_time_ms: int
    answered_by: str | None = None
    """`<provider_id>:<model>` of the model that answered: the version's own or one of its fallbacks."""
    fallback_from: list[ModelFailure] = []
    """The models that failed for good before the one that answered, in the order they were tried."""


class LoopCarry(BaseModel):
    """An agent loop paused at a turn so its workflow can continue as new: the conversation so far,
    ending in the request not sent yet, and what the run had spent and tried. The next run goes on
    from here without repeating a model request or a tool call. Large conversations leave the
    history by reference like any large payload (core/payload_blobs.py)."""

    messages: list[Any]
    """pydantic-ai's messages as JSON (`ModelMessagesTypeAdapter`), the last one the pending request."""
    usage: TokenUsage = TokenUsage()
    """Tokens spent so far by the run, failed tries and earlier models included."""
    model_index: int = 0
    """Which of the version's models was answering: 0 its own, n its n-th fallback."""
    fallback_from: list[ModelFailure] = []
    node_try: int = 1
    """The node's own try (its `retry`) the loop belongs to."""
    elapsed_ms: int = 0
    """Time the run had taken in earlier workflow runs."""


AGENT_REQUEST_ACTIVITY = "agent_request"
"""The activity that runs a whole agent run of a version without tools: one model request."""
NEEDS_AGENT_LOOP = "NeedsAgentLoop"
"""`agent_request` fails with this type when the answer needs a second model request (an output
that failed its schema, say); its details carry the usage spent and, when the run stopped before
a repair request (a retry prompt naming what was wrong), the messages so far. The caller then runs
the agent loop in the workflow, where every request is its own activity."""


class AgentRequestInput(BaseModel):
    """One pinned agent version and its prompt, for `agent_request`."""

    agent: AgentSnapshot
    prompt: str


class AgentTestResult(AgentRunOutput):
    """`model` is the version's own model; `answered_by` says which model answered."""

    agent_id: int
    agent_name: str
    agent_version: int
    model: str


AGENT_ACTIVITY_ID = re.compile(r"^(?P<node>.+)-\d+-agent-\d+(?:-fallback-\d+)?$")
"""A DAG node's `agent_request` activity id: `<node id>-<attempt>-agent-<try>`, and
`...-fallback-<n>` for its fallback models (workflows/dag_nodes.py)."""


def node_of_activity(activity_id: str) -> str | None:
    """The DAG node an `agent_request` activity id names, if it names one."""
    match = AGENT_ACTIVITY_ID.match(activity_id)
    return match["node"] if match else None
