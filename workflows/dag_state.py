"""Small deterministic helpers for DagWorkflow: graph shape, retry policies, compact carry state.

Pure functions over contract types, safe inside the workflow sandbox.
"""

import json
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.common import RetryPolicy

from contracts.dag import CarriedNode, NodeSpec, NodeState, RetrySpec
from contracts.retries import TOOL_RETRY
from contracts.usage import TokenUsage


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


def children_of(nodes: list[NodeSpec]) -> dict[str, list[str]]:
    """Node id → the nodes that depend on it, in spec order. A dependency outside `nodes` (a node
    finished in an earlier run) gets an entry too."""
    children: dict[str, list[str]] = {node.id: [] for node in nodes}
    for node in nodes:
        for dep in node.depends_on:
            children.setdefault(dep, []).append(node.id)
    return children


def topological_order(nodes: list[NodeSpec], children: dict[str, list[str]]) -> list[str]:
    """Kahn's order, stable with respect to the spec (the spec is validated acyclic). Dependencies
    outside `nodes` are finished and do not count."""
    present = {node.id for node in nodes}
    indegree = {node.id: sum(1 for dep in node.depends_on if dep in present) for node in nodes}
    queue = deque(node.id for node in nodes if indegree[node.id] == 0)
    order = []
    while queue:
        current = queue.popleft()
        order.append(current)
        for child in children[current]:
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    return order


def json_size(value: Any) -> int:
    """Bytes of a value's JSON (what it would cost in history or a carried payload)."""
    return len(json.dumps(value, ensure_ascii=False, default=str).encode())


def epoch_ms(moment: datetime | None) -> int | None:
    """Milliseconds since the epoch."""
    return None if moment is None else int(moment.timestamp() * 1000)


def _moment(ms: int | None, base: int) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp((base + ms) / 1000, tz=UTC)


def _after(ms: int | None, base: int) -> int | None:
    return None if ms is None else ms - base


def compact(state: NodeState, *, base_ms: int = 0) -> CarriedNode:
    """A finished node in the short form continue-as-new carries; times in ms after `base_ms`."""
    usage = state.usage if state.usage.requests or state.usage.total_tokens else None
    return CarriedNode(
        i=state.id,
        s=state.status,
        a=state.attempts,
        t0=_after(epoch_ms(state.started_at), base_ms),
        t1=_after(epoch_ms(state.finished_at), base_ms),
        p=state.output_preview,
        o=state.output,
        r=state.artifact,
        e=state.error,
        m=state.answered_by,
        fb=state.fallback_from or None,
        u=usage,
        ru=state.reused,
        d=state.decided_by,
    )


def expand(node: CarriedNode, *, base_ms: int = 0) -> NodeState:
    """The inverse of `compact`."""
    return NodeState(
        id=node.i,
        status=node.s,
        attempts=node.a,
        started_at=_moment(node.t0, base_ms),
        finished_at=_moment(node.t1, base_ms),
        output_preview=node.p,
        output=node.o,
        artifact=node.r,
        error=node.e,
        answered_by=node.m,
        fallback_from=node.fb or [],
        usage=node.u or TokenUsage(),
        reused=node.ru,
        decided_by=node.d,
    )
