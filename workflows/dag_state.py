"""Small deterministic helpers for DagWorkflow: graph shape, retry policies, compact carry state.

Pure functions over contract types, safe inside the workflow sandbox.
"""

import json
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.common import RetryPolicy

from contracts.dag import CarriedNode, DagSpec, NodeState, RetrySpec
from contracts.usage import TokenUsage

PREVIEW_CHARS = 200

TOOL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=3,
)
"""Tool nodes without a `retry` spec: a few attempts, then the node fails and on_failure decides."""


def retry_policy(spec: RetrySpec | None) -> RetryPolicy:
    """The Temporal retry policy for a node's `retry` spec."""
    if spec is None:
        return TOOL_RETRY
    return RetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_interval_s),
        backoff_coefficient=spec.backoff,
        maximum_interval=timedelta(seconds=max(spec.initial_interval_s, 60)),
        maximum_attempts=spec.max_attempts,
    )


def children_of(spec: DagSpec) -> dict[str, list[str]]:
    """Node id → the nodes that depend on it, in spec order."""
    children: dict[str, list[str]] = {node.id: [] for node in spec.nodes}
    for node in spec.nodes:
        for dep in node.depends_on:
            children[dep].append(node.id)
    return children


def topological_order(spec: DagSpec, children: dict[str, list[str]]) -> list[str]:
    """Kahn's order, stable with respect to the spec (the spec is validated acyclic)."""
    indegree = {node.id: len(node.depends_on) for node in spec.nodes}
    queue = deque(node.id for node in spec.nodes if not node.depends_on)
    order = []
    while queue:
        current = queue.popleft()
        order.append(current)
        for child in children[current]:
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    return order


def preview_of(value: Any) -> str:
    """A short, human-readable start of a value for status and events."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:PREVIEW_CHARS]


def json_size(value: Any) -> int:
    """Bytes of a value's JSON (what it would cost in history or a carried payload)."""
    return len(json.dumps(value, ensure_ascii=False, default=str).encode())


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def compact(state: NodeState) -> CarriedNode:
    """A finished node in the short form continue-as-new carries."""
    usage = state.usage if state.usage.requests or state.usage.total_tokens else None
    return CarriedNode(
        i=state.id,
        s=state.status,
        a=state.attempts,
        t0=_ms(state.started_at),
        t1=_ms(state.finished_at),
        p=state.output_preview,
        o=state.output,
        r=state.artifact,
        e=state.error,
        u=usage,
        ru=state.reused,
    )


def expand(node: CarriedNode) -> NodeState:
    """The inverse of `compact`."""
    return NodeState(
        id=node.i,
        status=node.s,
        attempts=node.a,
        started_at=_moment(node.t0),
        finished_at=_moment(node.t1),
        output_preview=node.p,
        output=node.o,
        artifact=node.r,
        error=node.e,
        usage=node.u or TokenUsage(),
        reused=node.ru,
    )
