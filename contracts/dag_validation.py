"""Checks a DagSpec before anything runs and reports every problem at once (SPEC §4).

Pure: the tool schemas and agent names come in as arguments, so the API, the planner and tests
share one implementation without touching the database or the registry.
"""

import json
from collections import deque
from collections.abc import Collection, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from contracts.dag import MAX_NODES, MAX_PARAMS_BYTES, MAX_SPEC_BYTES, DagSpec, NodeSpec
from contracts.templates import TEMPLATE, Reference, TemplateError, has_template, parse, template_texts
from contracts.tool_checks import input_problems
from contracts.tool_inputs import TOOL_OUTPUT_TYPES


def _duplicates(spec: DagSpec) -> list[str]:
    seen: set[str] = set()
    problems = []
    for node in spec.nodes:
        if node.id in seen:
            problems.append(f"duplicate node id {node.id!r}")
        seen.add(node.id)
    return problems


def _cycles(spec: DagSpec, ids: set[str]) -> list[str]:
    """One message per cycle found by an iterative DFS (a 10,000-node chain must not recurse)."""
    deps = {node.id: [d for d in node.depends_on if d in ids] for node in spec.nodes}
    position = {node.id: index for index, node in enumerate(spec.nodes)}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    problems = []
    for root in deps:
        if root in state:
            continue
        path: list[str] = [root]
        stack = [iter(deps[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                # depends_on points from a node to what it needs; print the cycle in run order.
                cycle = path[path.index(child) :]
                cycle.reverse()
                first = min(range(len(cycle)), key=lambda i: position[cycle[i]])
                cycle = cycle[first:] + cycle[:first]
                problems.append("cycle: " + " -> ".join([*cycle, cycle[0]]))
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(deps[child]))
    return problems


def _is_ancestor(candidate: str, node: str, deps: Mapping[str, list[str]]) -> bool:
    seen = {node}
    queue = deque(deps.get(node, []))
    while queue:
        current = queue.popleft()
        if current == candidate:
            return True
        if current not in seen:
            seen.add(current)
            queue.extend(deps.get(current, []))
    return False


def _template_problems(
    node: NodeSpec,
    *,
    ids: set[str],
    param_names: Collection[str],
    deps: Mapping[str, list[str]],
) -> list[str]:
    problems = []
    refs: list[Reference] = []
    for text in template_texts([node.input, node.prompt]):
        try:
            refs.append(parse(text))
        except TemplateError as exc:
            problems.append(f"node {node.id!r}: {exc}")
    for ref in refs:
        if ref.root == "params":
            if ref.path[0] not in param_names:
                problems.append(f"node {node.id!r}: {{{{{ref.raw}}}}} names an unknown param")
        elif ref.node not in ids:
            problems.append(f"node {node.id!r}: {{{{{ref.raw}}}}} names an unknown node")
        elif ref.node == node.id or not _is_ancestor(ref.node or "", node.id, deps):
            problems.append(
                f"node {node.id!r}: {{{{{ref.raw}}}}} references {ref.node!r}, "
                "which is not an ancestor (add it to depends_on)"
            )
    return problems


def _at(value: Any, path: Collection[Any]) -> Any:
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _templated(instance: dict[str, Any], path: Collection[Any]) -> bool:
    """Whether the value at `path`, or any value on the way to it, is a template string."""
    value: Any = instance
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return False
        if has_template(value):
            return True
    return has_template(value)


def _input_problems(node: NodeSpec, schema: dict[str, Any]) -> list[str]:
    """Schema errors for a tool input; a template string may stand for any value, so errors at
    (or inside) templated values are not reported."""
    try:
        validator = Draft202012Validator(schema)
    except SchemaError as exc:
        return [f"node {node.id!r}: tool {node.tool!r} has an invalid schema: {exc.message}"]
    problems = []
    for error in sorted(validator.iter_errors(node.input), key=lambda e: list(e.absolute_path)):
        path = list(error.absolute_path)
        if _templated(node.input, path):
            continue
        where = "input" + "".join(f"[{p!r}]" for p in path)
        problems.append(f"node {node.id!r}: {where}: {error.message}")
    return problems


def _schema_at(schema: dict[str, Any], path: Collection[Any]) -> dict[str, Any] | None:
    """The sub-schema an input value at `path` must match (through properties, items and local
    $refs), or None where the schema does not say."""
    defs = schema.get("$defs", {})
    current: dict[str, Any] | None = schema
    for key in path:
        while current is not None and "$ref" in current:
            current = defs.get(str(current["$ref"]).rsplit("/", 1)[-1])
        if current is None:
            return None
        if isinstance(key, int):
            items = current.get("items")
            current = items if isinstance(items, dict) else None
        else:
            current = current.get("properties", {}).get(key)
    while current is not None and "$ref" in current:
        current = defs.get(str(current["$ref"]).rsplit("/", 1)[-1])
    return current


def _types_of(schema: dict[str, Any]) -> set[str] | None:
    """The JSON types a schema admits, or None when it admits any."""
    if "anyOf" in schema:
        found: set[str] = set()
        for variant in schema["anyOf"]:
            types = _types_of(variant) if isinstance(variant, dict) else None
            if types is None:
                return None
            found |= types
        return found
    kind = schema.get("type")
    if kind is None:
        return None
    types = {kind} if isinstance(kind, str) else set(kind)
    return types | {"number"} if "integer" in types else types


def _templated_values(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """(path, template text) of every input value that is exactly one template."""
    if isinstance(value, str):
        match = TEMPLATE.fullmatch(value)  # as templates.render: exactly, no strip
        return [(path, match.group(1))] if match else []
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _templated_values(item, (*path, key))]
    if isinstance(value, list):
        return [
            found for index, item in enumerate(value) for found in _templated_values(item, (*path, index))
        ]
    return []


def _type_problems(node: NodeSpec, schema: dict[str, Any], tools: Mapping[str, str | None]) -> list[str]:
    """A whole-value template keeps its output's type: one whose tool always answers a type the
    input field cannot take would fail at run time, so it is a problem now."""
    problems = []
    for path, text in _templated_values(node.input):
        try:
            reference = parse(text)
        except TemplateError:
            continue  # reported by _template_problems
        tool = tools.get(reference.node or "") if reference.root == "nodes" else None
        produced = TOOL_OUTPUT_TYPES.get(tool or "") if not reference.path else None
        field = _schema_at(schema, path)
        wanted = _types_of(field) if field is not None else None
        if produced is None or wanted is None or produced & wanted:
            continue
        where = "input" + "".join(f"[{p!r}]" for p in path)
        problems.append(
            f"node {node.id!r}: {where} takes {' or '.join(sorted(wanted))}, but {{{{{text}}}}} is always "
            f"{' or '.join(sorted(produced))} (the {tool} tool's output)"
        )
    return problems


def validate_spec(
    spec: DagSpec,
    *,
    tool_schemas: Mapping[str, dict[str, Any]],
    agent_names: Collection[str],
    params: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every problem in `spec`, in a stable order; an empty list means it may run.

    Args:
        spec: The parsed spec (pydantic already checked field shapes).
        tool_schemas: Registered tool name → JSON schema of its input.
        agent_names: Names of agents that have an active version.
        params: Run params that will be merged over `spec.params`; each must be declared there.
    """
    problems: list[str] = []
    if len(spec.nodes) > MAX_NODES:
        problems.append(f"too many nodes: {len(spec.nodes)} > {MAX_NODES}")
    size = len(spec.model_dump_json())
    if size > MAX_SPEC_BYTES:
        problems.append(f"spec too large: {size} bytes of JSON > {MAX_SPEC_BYTES}")
    problems.extend(_param_problems(spec, params))
    problems.extend(_duplicates(spec))
    ids = {node.id for node in spec.nodes}
    deps = {node.id: list(node.depends_on) for node in spec.nodes}
    tools = {node.id: node.tool for node in spec.nodes}
    param_names = set(spec.params) | set(params or {})
    for node in spec.nodes:
        for dep in node.depends_on:
            if dep == node.id:
                problems.append(f"node {node.id!r} depends on itself")
            elif dep not in ids:
                problems.append(f"node {node.id!r} depends on unknown node {dep!r}")
        if node.tool is not None:
            schema = tool_schemas.get(node.tool)
            if schema is None:
                problems.append(f"node {node.id!r}: unknown tool {node.tool!r}")
            else:
                problems.extend(_input_problems(node, schema))
                problems.extend(_type_problems(node, schema, tools))
                problems.extend(f"node {node.id!r}: {p}" for p in input_problems(node.tool, node.input))
        if node.agent is not None and node.agent not in agent_names:
            problems.append(f"node {node.id!r}: unknown agent {node.agent!r}")
        problems.extend(_template_problems(node, ids=ids, param_names=param_names, deps=deps))
    problems.extend(p for p in _cycles(spec, ids) if not _self_loop(p))
    return problems


def _param_problems(spec: DagSpec, params: Mapping[str, Any] | None) -> list[str]:
    """Run params must be ones the spec declares (a typo would otherwise be silently ignored)
    and small enough to travel in the workflow's input."""
    if not params:
        return []
    problems = []
    undeclared = sorted(set(params) - set(spec.params))
    if undeclared:
        problems.append(
            f"param(s) not declared by the DAG: {', '.join(undeclared)} "
            f"(it declares: {', '.join(sorted(spec.params)) or 'none'})"
        )
    size = len(json.dumps(params, default=str))
    if size > MAX_PARAMS_BYTES:
        problems.append(f"params too large: {size} bytes of JSON > {MAX_PARAMS_BYTES}")
    return problems


def _self_loop(problem: str) -> bool:
    """Self-dependencies are already reported on their own; skip their one-node 'cycle'."""
    names = problem.removeprefix("cycle: ").split(" -> ")
    return len(names) == 2 and names[0] == names[1]
