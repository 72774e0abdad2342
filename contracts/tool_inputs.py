"""Every built-in tool's input model: the schema a DAG node's input is checked against when the
DAG is stored, and what the tool activity validates again when it runs.

Pure Pydantic, so the services validate specs without importing the tool implementations
(`activities/tools/`, which register one activity per name here; tests/activities/test_tools.py
checks the two lists agree).
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.agents import AgentName

MAX_ARTIFACT_NAME_LENGTH = 200
MAX_ARTIFACT_BYTES = 50 * 1024 * 1024
ARTIFACT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_ +=@,-]*(\.[A-Za-z0-9_ +=@,-]+)*$"
"""A plain file name: no separators, no NUL, no '..'. In the JSON schema too, so a DAG spec with a
bad name is refused before anything runs (and a planner's grammar cannot produce one). At run time
the artifact store refuses with its precise ArtifactNameInvalid."""
MAX_EXPRESSION_CHARS = 1000
SAFE_TO_REPEAT = frozenset({"GET", "HEAD", "OPTIONS"})
"""HTTP methods sent again after an unclear failure; others only with `idempotent: true`."""


class ToolInput(BaseModel):
    """Base of every tool input: unknown fields are mistakes, not extras to ignore."""

    model_config = ConfigDict(extra="forbid")


class NoopInput(ToolInput):
    """Any JSON value; it comes back unchanged."""

    value: Any = None


class CurrentTimeInput(ToolInput):
    """An IANA time zone name such as `Europe/Berlin`."""

    timezone: str = Field(default="UTC", min_length=1, max_length=64)


class CalculatorInput(ToolInput):
    """An arithmetic expression such as `(2 + 3) * 4 / 7` or `sqrt(2) ** 2`."""

    expression: str = Field(min_length=1, max_length=MAX_EXPRESSION_CHARS)


class HttpRequestInput(ToolInput):
    """One HTTP request; a dict or list body is sent as JSON, a string as is."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    # The scheme rule is in the schema so a DAG spec is refused when stored; at run time
    # the tool's URL parser refuses with its precise UrlInvalid.
    url: str = Field(
        min_length=1, max_length=8192, json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}
    )
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    body: str | dict[str, Any] | list[Any] | None = None
    timeout_s: float = Field(default=30, gt=0, le=55)
    idempotent: bool = False
    """Sending the request twice does no harm, so it may be retried after a timeout; GET, HEAD and
    OPTIONS are treated so anyway."""

    @property
    def repeatable(self) -> bool:
        """Whether a retry may send this request again when the last attempt's fate is unknown."""
        return self.idempotent or self.method in SAFE_TO_REPEAT

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class WriteArtifactInput(ToolInput):
    """A plain file name (no directories) and its text content; an existing one is replaced."""

    name: str = Field(
        min_length=1,
        max_length=MAX_ARTIFACT_NAME_LENGTH,
        json_schema_extra={"pattern": ARTIFACT_NAME_PATTERN},
    )
    content: str = Field(max_length=MAX_ARTIFACT_BYTES)


class ReadArtifactInput(ToolInput):
    """The name of an artifact to read as text."""

    name: str = Field(
        min_length=1,
        max_length=MAX_ARTIFACT_NAME_LENGTH,
        json_schema_extra={"pattern": ARTIFACT_NAME_PATTERN},
    )


class RememberInput(ToolInput):
    """What to remember, for which agent name, with optional tags."""

    agent: AgentName
    content: str = Field(min_length=1, max_length=20_000)
    tags: list[str] = Field(default_factory=list, max_length=20)


class RecallInput(ToolInput):
    """Words to look for in an agent's memories; the best `limit` matches come back."""

    agent: AgentName
    query: str = Field(default="", max_length=1000)
    limit: int = Field(default=5, ge=1, le=50)


class RunAgentInput(ToolInput):
    """The agent name (its active version runs) and the prompt."""

    agent: AgentName
    prompt: str = Field(min_length=1, max_length=100_000)


TOOL_INPUTS: dict[str, type[ToolInput]] = {
    "noop": NoopInput,
    "calculator": CalculatorInput,
    "current_time": CurrentTimeInput,
    "http_request": HttpRequestInput,
    "write_artifact": WriteArtifactInput,
    "read_artifact": ReadArtifactInput,
    "remember": RememberInput,
    "recall": RecallInput,
    "run_agent": RunAgentInput,
}
"""Tool name → its input model, for every built-in tool."""


TOOL_OUTPUT_TYPES: dict[str, frozenset[str]] = {
    "calculator": frozenset({"number"}),
    "current_time": frozenset({"object"}),
    "http_request": frozenset({"object"}),
    "write_artifact": frozenset({"object"}),
    "read_artifact": frozenset({"string"}),
}
"""The JSON types a tool's output always has, where it is fixed (`noop` answers its input, the
others vary): a template that hands such an output to an input field of another type can never
run, and the DAG is refused when it is stored (contracts/dag_validation.py)."""


def tool_names() -> frozenset[str]:
    """Every built-in tool's name."""
    return frozenset(TOOL_INPUTS)


def tool_schemas() -> dict[str, dict[str, Any]]:
    """Tool name → JSON schema of its input, for validating DAG node inputs up front."""
    return {name: model.model_json_schema() for name, model in TOOL_INPUTS.items()}
