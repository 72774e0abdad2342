"""What a fork's or a resume's patch changes in one node, applied to a DAG spec and checked the
same way for both (a tool node takes a new `input`; an agent node a prompt, agent, model or
temperature), so no way into a run accepts a change another one refuses."""

from typing import Any

from pydantic import ValidationError

from contracts.dag import DagSpec, NodePatch, NodeSpec
from core.errors import Invalid

AGENT_FIELDS = ("prompt", "agent", "model", "temperature")
NAMED_MAX = 20
"""Node ids a refusal lists before it says how many more there are."""


def patched_spec(spec: DagSpec, patch: dict[str, NodePatch], *, rerun: set[str], from_node: str) -> DagSpec:
    """`spec` with `patch` applied; Invalid naming every patch entry that cannot apply."""
    nodes = {node.id: node for node in spec.nodes}
    problems: list[str] = []
    for node_id, change in patch.items():
        node = nodes.get(node_id)
        if node is None:
            problems.append(f"patched node {node_id!r} is not in the DAG")
        elif node_id not in rerun:
            problems.append(
                f"patched node {node_id!r} is not rerun by a fork from {from_node!r} (rerun: {_names(rerun)})"
            )
        else:
            problems.extend(_kind_problems(node, change))
    if problems:
        raise Invalid("cannot fork: " + "; ".join(problems))
    return spec.model_copy(
        update={"nodes": [_apply(node, patch[node.id]) if node.id in patch else node for node in spec.nodes]}
    )


def _kind_problems(node: NodeSpec, change: NodePatch) -> list[str]:
    given = change.model_dump(exclude_none=True)
    if node.tool is not None:
        wrong = [field for field in AGENT_FIELDS if field in given]
        kind, allowed = "a tool node", "'input'"
    else:
        wrong = ["input"] if "input" in given else []
        kind, allowed = "an agent node", "'prompt', 'agent', 'model' and 'temperature'"
    if not wrong:
        return []
    fields = ", ".join(repr(field) for field in wrong)
    return [f"patched node {node.id!r} is {kind}: {fields} cannot apply (only {allowed})"]


def _apply(node: NodeSpec, change: NodePatch) -> NodeSpec:
    values: dict[str, Any] = node.model_dump(mode="json")
    values.update(change.model_dump(exclude_none=True))
    try:
        return NodeSpec.model_validate(values)
    except ValidationError as exc:
        messages = "; ".join(error["msg"] for error in exc.errors(include_input=False))
        raise Invalid(f"cannot fork: patched node {node.id!r} is invalid: {messages}") from None


def _names(ids: set[str]) -> str:
    ordered = sorted(ids)
    shown = ", ".join(ordered[:NAMED_MAX])
    return shown + (f" and {len(ordered) - NAMED_MAX} more" if len(ordered) > NAMED_MAX else "")
