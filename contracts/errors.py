"""Typed failure names shared by workflows (which raise them) and the API (which maps them).

Each is the `type` of a non-retryable `ApplicationError`, so a failure is final and the API can
answer it by type, never by parsing a message.
"""

AGENT_NOT_FOUND = "AgentNotFound"
PROVIDER_NOT_FOUND = "ProviderNotFound"
PROVIDER_INACTIVE = "ProviderInactive"
PROVIDER_AUTH = "ProviderAuthError"
PROVIDER_REJECTED = "ProviderRequestRejected"
PROVIDER_UNAVAILABLE = "ProviderUnavailable"
MODEL_OUTPUT_INVALID = "ModelOutputInvalid"
AGENT_LIMIT_REACHED = "AgentLimitReached"
"""An agent run reached its version's `max_requests` or `max_tool_calls`."""
SECRET_UNREADABLE = "SecretUnreadable"
PROVIDER_KEY_INVALID = "ProviderKeyInvalid"
"""A stored key that cannot be sent in an HTTP header (stored before keys were checked)."""
MCP_TOOL_UNAVAILABLE = "McpToolUnavailable"
"""A run uses an MCP tool whose server is gone or no longer lists it (also `contracts.mcp`)."""
DAG_FAILED = "DagFailed"
INTERNAL_ERROR = "InternalError"
"""A bug in workflow code: final, with every node state closed first."""
TOKEN_BUDGET_EXCEEDED = "TokenBudgetExceeded"
UNKNOWN_NODE = "UnknownNode"
NODE_NOT_WAITING = "NodeNotWaitingForApproval"
NOT_SUSPENDED_ON_NODE = "NotSuspendedOnNode"
INVALID_PATCH = "InvalidPatch"
NO_TOKEN_BUDGET = "NoTokenBudget"
BUDGET_TOO_LOW = "BudgetTooLow"
"""A raised budget must be above the tokens the execution has used."""


class WorkflowBug(Exception):
    """An invariant of goalflow's workflow code that does not hold: the one exception type (with
    the decode errors the worker lists beside it) that fails a workflow for good.

    Anything else a workflow task raises, above all Temporal's non-determinism error when a release
    can no longer replay a run's history, only holds the run: the worker retries its workflow task
    until a fixed or rolled-back worker picks it up (`worker.WORKFLOW_FAILURE_TYPES`)."""
