"""What workflows know about an agent: a pinned snapshot of one version, never a credential."""

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from contracts.usage import TokenUsage

AgentName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", max_length=63)]
"""An agent's name: lowercase letters, digits, `_` and `-`, as it appears in URLs and DAG specs."""


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

    @property
    def model_id(self) -> str:
        """The id the model resolver turns into a provider-backed model inside the activity."""
        return f"goalflow:{self.provider_id}:{self.model}"


class AgentTestInput(BaseModel):
    agent_id: int
    prompt: str = Field(min_length=1, max_length=100_000)


class AgentRunOutput(BaseModel):
    """The result of one agent run inside a workflow."""

    output: Any
    usage: TokenUsage
    execution_time_ms: int


AGENT_REQUEST_ACTIVITY = "agent_request"
"""The activity that runs a whole agent run of a version without tools: one model request."""
NEEDS_AGENT_LOOP = "NeedsAgentLoop"
"""`agent_request` fails with this type when the answer needs a second model request (an output
that failed its schema, say); its details carry the usage spent. The caller then runs the agent
loop in the workflow, where every request is its own activity."""


class AgentRequestInput(BaseModel):
    """One pinned agent version and its prompt, for `agent_request`."""

    agent: AgentSnapshot
    prompt: str


class AgentTestResult(AgentRunOutput):
    agent_id: int
    agent_name: str
    agent_version: int
    model: str
