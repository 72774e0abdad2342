"""MCP tool servers as goalflow sees them: how their tools are named, what a pinned tool carries
into a workflow, and the input of the one activity that calls them.

An MCP tool is a goalflow tool named `<server>__<tool>`: the server's registered name, two
underscores, the tool's own name. Server names are short identifiers without a double underscore,
so the first `__` always splits a name back, and every name is model-safe (the characters and
length every provider accepts for a function name); a tool whose full name would not be is listed
by the server but not offered. Built-in tools never contain `__`.

Pure data, safe inside the workflow sandbox: no secret ever travels in these models (the
connection settings are loaded from the database inside the activity).
"""

import re
from typing import Any, Literal

from pydantic import BaseModel

from contracts import errors
from contracts.tools import ToolResult

MCP_SEPARATOR = "__"
SERVER_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,30}[a-z0-9]$|^[a-z]$"
"""Lowercase letters, digits and single underscores, starting with a letter, at most 32."""
TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What every provider accepts as a function name (OpenAI's rule is the strictest)."""
MCP_CALL_ACTIVITY = "mcp_call_tool"
"""The activity every MCP tool call runs in, from a DAG node or an agent loop."""
MCP_RESOLVE_ACTIVITY = "resolve_mcp_tools"
"""The local activity that pins the MCP tools a run uses when it starts."""
MCP_GET_TASK_ACTIVITY = "mcp_get_task"
MCP_UPDATE_TASK_ACTIVITY = "mcp_update_task"
MCP_CANCEL_TASK_ACTIVITY = "mcp_cancel_task"
"""The activities that follow a call the server runs as a task: `tasks/get`, `tasks/update`
(answers to its questions), `tasks/cancel`; between polls the workflow sleeps on a durable timer."""
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
"""MCP Tasks (SEP-2663, an extension of MCP 2026-07-28): the server may answer a `tools/call`
with a task handle instead of the result, and the client polls it."""
TASK_POLL_MIN_S = 1.0
TASK_POLL_MAX_S = 30.0
"""Polls start at the server's suggested interval (at least the minimum) and slow down by half
each time up to the maximum (or the server's interval if it asks for more): an hour-long task
costs about 130 polls."""
MCP_DEFAULT_TIMEOUT_S = 120.0

Approval = Literal["destructive", "always", "never"]
"""When a call waits for a person: for tools that may destroy (the default), for every call, never."""

# Typed failure names (the `type` of their ApplicationErrors).
MCP_TOOL_UNAVAILABLE = errors.MCP_TOOL_UNAVAILABLE
MCP_SERVER_UNAVAILABLE = "McpServerUnavailable"
"""The server could not be started or reached (retryable: the next attempt starts it again)."""
MCP_TOOL_FAILED = "McpToolFailed"
"""The server answered the call with an error result (`isError`): final, the node decides."""
MCP_OUTCOME_UNKNOWN = "McpOutcomeUnknown"
"""A call to a tool that is neither read-only nor idempotent may have reached the server and its
answer was lost; it is not sent again, the node's `on_failure` decides."""
MCP_INPUT_REFUSED = "McpInputRefused"
"""The server asked for something goalflow does not give it: its LLM (sampling), or a person's
answer where the run cannot ask one (an agent test, a planner), or too many rounds of questions."""
MAX_INPUT_ROUNDS = 10
MCP_CALL_REJECTED = "McpCallRejected"
"""A person (or an approval deadline) refused a call an agent wanted to make."""


def is_mcp_tool(name: str) -> bool:
    """Whether a tool name is an MCP tool's (`<server>__<tool>`)."""
    return MCP_SEPARATOR in name


def tool_name(server: str, tool: str) -> str:
    """The goalflow name of a server's tool."""
    return f"{server}{MCP_SEPARATOR}{tool}"


def split_tool_name(name: str) -> tuple[str, str]:
    """(server name, tool name) of an MCP tool's goalflow name."""
    server, _, tool = name.partition(MCP_SEPARATOR)
    return server, tool


def usable_name(server: str, tool: str) -> bool:
    """Whether a server's tool gets a goalflow name a model can call."""
    return TOOL_NAME_PATTERN.fullmatch(tool_name(server, tool)) is not None


class McpToolAnnotations(BaseModel):
    """The MCP spec's tool hints, with the spec's defaults for a tool that gives none: not
    read-only, possibly destructive, not idempotent, open world."""

    title: str | None = None
    read_only_hint: bool = False
    destructive_hint: bool = True
    idempotent_hint: bool = False
    open_world_hint: bool = True


class McpTool(BaseModel):
    """One tool of a registered server, as listed when the server was registered or refreshed."""

    name: str
    """The goalflow name, `<server>__<tool>`."""
    tool: str
    """The server's own name for it."""
    server: str
    server_id: int
    description: str = ""
    input_schema: dict[str, Any] = {}
    annotations: McpToolAnnotations = McpToolAnnotations()
    needs_approval: bool = False
    """Whether a call waits for a person (the server's `approval` setting over the annotations)."""
    timeout_s: float = MCP_DEFAULT_TIMEOUT_S
    """The server's per-call timeout."""

    @property
    def retry_safe(self) -> bool:
        """Whether a call may be sent again when its outcome is unknown."""
        return self.annotations.read_only_hint or self.annotations.idempotent_hint


def needs_approval(approval: Approval, annotations: McpToolAnnotations) -> bool:
    """The server's setting applied to one tool: `destructive` asks for any tool that is not
    read-only and does not say it is non-destructive (the MCP spec's assumption)."""
    if approval == "always":
        return True
    if approval == "never":
        return False
    return not annotations.read_only_hint and annotations.destructive_hint


class McpQuestion(BaseModel):
    """A server's elicitation: what it asks a person, and the form of the answer (a flat JSON
    schema of strings, numbers, booleans and enums)."""

    key: str
    """The server's key for the request (the answer goes back under it)."""
    message: str
    requested_schema: dict[str, Any] = {}


class McpInputRequired(BaseModel):
    """A call the server cannot finish without more input (MCP 2026-07-28 `input_required`): the
    questions for a person, roots requests (answered with none), and the state to send back."""

    questions: list[McpQuestion] = []
    roots: list[str] = []
    request_state: str | None = None


class McpTask(BaseModel):
    """A call the server runs as a task (MCP Tasks): its id and how it stands."""

    task_id: str
    status: str = "working"
    """`working`, `input_required` (the poll carries the questions), or a final one."""
    status_message: str = ""
    poll_interval_s: float = TASK_POLL_MIN_S
    """The server's suggested polling interval."""


class McpCallOutcome(BaseModel):
    """The `mcp_call_tool` activity's result: the tool's result, what it needs first, or the task
    the server runs it as (the workflow then polls it)."""

    result: ToolResult | None = None
    input_required: McpInputRequired | None = None
    task: McpTask | None = None


class McpTaskRef(BaseModel):
    """The input of the task activities: which server's task, for which tool, and (for
    `mcp_update_task`) the answers to its questions, keyed as it asked."""

    server_id: int
    name: str
    """The goalflow tool name (for results and messages)."""
    task_id: str
    input_responses: dict[str, dict[str, Any]] | None = None


class McpTaskState(BaseModel):
    """The `mcp_get_task` activity's result: the task, and its result once it completed (or its
    questions while it waits for input). A failed or cancelled task fails the activity."""

    task: McpTask
    result: ToolResult | None = None
    input_required: McpInputRequired | None = None


class McpCallInput(BaseModel):
    """The `mcp_call_tool` activity's input: which tool, with what arguments. The server is
    addressed by id; its command, URL, environment and headers are read inside the activity.
    A call the server asked more input for is made again with the answers (`input_responses`,
    keyed as it asked) and the state it gave (`request_state`)."""

    server_id: int
    tool: str
    """The server's own tool name."""
    name: str
    """The goalflow name (for results, artifacts and messages)."""
    arguments: dict[str, Any] = {}
    retry_safe: bool = False
    """Read-only or idempotent: a lost answer is asked again; otherwise at most once."""
    input_responses: dict[str, dict[str, Any]] | None = None
    request_state: str | None = None
