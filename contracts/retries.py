"""Retry policies that both workflows (scheduling) and activities (pydantic-ai tool configs) use,
defined once. Pure data, safe inside the workflow sandbox."""

from datetime import timedelta

from temporalio.common import RetryPolicy

TOOL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
)
"""A tool call (a DAG tool node without a `retry` spec, or an agent's tool call): transient
failures (network, database) retry a few times, then the node fails and `on_failure` decides; a
typed ToolError marked final (bad input) never retries."""
