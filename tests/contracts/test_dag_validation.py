"""validate_spec reports every problem at once."""

from typing import Any

from contracts.dag import DagSpec, NodeSpec
from contracts.dag_validation import validate_spec

SCHEMAS: dict[str, dict[str, Any]] = {
    "http_request": {
        "type": "object",
        "properties": {"url": {"type": "string", "format": "uri"}, "tries": {"type": "integer"}},
        "required": ["url"],
    },
    "noop": {"type": "object"},
}


def check(*nodes: NodeSpec, **fields: object) -> list[str]:
    return validate_spec(
        DagSpec(name="t", nodes=list(nodes), **fields), tool_schemas=SCHEMAS, agent_names={"writer"}
    )


def test_valid_spec_has_no_problems() -> None:
    assert (
        check(
            NodeSpec(
                id="fetch", tool="http_request", input={"url": "{{params.url}}", "tries": "{{params.n}}"}
            ),
            NodeSpec(
                id="sum", agent="writer", prompt="Summarise {{nodes.fetch.output.body}}", depends_on=["fetch"]
            ),
            params={"url": "https://x", "n": 2},
        )
        == []
    )


def test_every_problem_is_reported_at_once() -> None:
    problems = check(
        NodeSpec(id="a", tool="noop", depends_on=["c"]),
        NodeSpec(id="dup", tool="noop"),
        NodeSpec(id="dup", tool="noop"),
        NodeSpec(id="b", tool="noop", depends_on=["a", "ghost"]),
        NodeSpec(id="c", tool="noop", depends_on=["b"]),
        NodeSpec(id="d", tool="teleport"),
        NodeSpec(id="e", agent="nobody", prompt="{{params.missing}} {{nodes.d.output}}"),
        NodeSpec(id="f", tool="http_request", input={"tries": "three"}),
        NodeSpec(id="g", tool="noop", input={"x": "{{nodes.g.output}}", "y": "{{bogus}}"}),
    )
    assert "duplicate node id 'dup'" in problems
    assert "node 'b' depends on unknown node 'ghost'" in problems
    assert any(p.startswith("cycle: ") and all(n in p for n in ("a", "b", "c")) for p in problems)
    assert "node 'd': unknown tool 'teleport'" in problems
    assert "node 'e': unknown agent 'nobody'" in problems
    assert "node 'e': {{params.missing}} names an unknown param" in problems
    assert any("node 'e': {{nodes.d.output}} references 'd', which is not an ancestor" in p for p in problems)
    assert any(p.startswith("node 'f': input: 'url' is a required property") for p in problems)
    assert any(p.startswith("node 'f': input['tries']: 'three' is not of type 'integer'") for p in problems)
    assert any("node 'g': {{nodes.g.output}}" in p for p in problems)
    assert any("node 'g': malformed template" in p or "unknown template" in p for p in problems)


def test_cycle_is_named_in_run_order() -> None:
    problems = check(
        NodeSpec(id="a", tool="noop", depends_on=["c"]),
        NodeSpec(id="b", tool="noop", depends_on=["a"]),
        NodeSpec(id="c", tool="noop", depends_on=["b"]),
    )
    assert problems == ["cycle: a -> b -> c -> a"]


def test_self_dependency_is_reported_once() -> None:
    assert check(NodeSpec(id="a", tool="noop", depends_on=["a"])) == ["node 'a' depends on itself"]


def test_run_params_must_be_declared_by_the_spec_and_small() -> None:
    spec = DagSpec(
        name="t", params={"k": 0}, nodes=[NodeSpec(id="a", tool="noop", input={"v": "{{params.k}}"})]
    )
    assert validate_spec(spec, tool_schemas=SCHEMAS, agent_names=set(), params={"k": 1}) == []
    assert validate_spec(spec, tool_schemas=SCHEMAS, agent_names=set(), params={"k": 1, "typo": 2}) == [
        "param(s) not declared by the DAG: typo (it declares: k)"
    ]
    big = validate_spec(spec, tool_schemas=SCHEMAS, agent_names=set(), params={"k": "x" * 300_000})
    assert len(big) == 1 and big[0].startswith("params too large: ")


def test_size_limit() -> None:
    nodes = [NodeSpec(id=f"n{i}", tool="noop", input={"pad": "x" * 2000}) for i in range(600)]
    assert any(p.startswith("spec too large") for p in check(*nodes))


def test_long_chain_has_no_recursion_limit() -> None:
    nodes = [NodeSpec(id="n0", tool="noop")]
    nodes += [
        NodeSpec(
            id=f"n{i}", tool="noop", input={"p": f"{{{{nodes.n{i - 1}.output}}}}"}, depends_on=[f"n{i - 1}"]
        )
        for i in range(1, 5000)
    ]
    assert check(*nodes) == []


def test_a_number_output_fills_a_string_field_only_inside_a_longer_string() -> None:
    """As templates.render resolves it: exactly one template keeps the number, anything around it
    (a trailing newline too) makes a string. The embedded planner saves `{{...output}}\\n`."""
    from activities.tools.registry import describe_tools

    schemas = {t.name: t.input_schema for t in describe_tools()}
    calc = NodeSpec(id="calc", tool="calculator", input={"expression": "17*23"})

    def problems(content: str) -> list[str]:
        save = NodeSpec(
            id="save", tool="write_artifact", input={"name": "a.md", "content": content}, depends_on=["calc"]
        )
        return validate_spec(DagSpec(name="t", nodes=[calc, save]), tool_schemas=schemas, agent_names=set())

    [refused] = problems("{{nodes.calc.output}}")
    assert "takes string" in refused and "always number" in refused
    assert problems("{{nodes.calc.output}}\n") == []
    assert problems("17*23 = {{nodes.calc.output}}") == []
