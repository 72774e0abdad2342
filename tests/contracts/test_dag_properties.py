"""Properties of DAG validation (contracts/dag_validation.py) over generated specs."""

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.dag import DagSpec, NodeSpec
from contracts.dag_validation import validate_spec

UNTIMED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""No per-example deadline: a timing is no property, and the machine is shared."""

SCHEMAS: dict[str, dict[str, Any]] = {
    "noop": {"type": "object"},
    "counter": {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    },
}
AGENTS = {"writer"}
IDS = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


def check(spec: DagSpec, params: dict[str, Any] | None = None) -> list[str]:
    return validate_spec(spec, tool_schemas=SCHEMAS, agent_names=AGENTS, params=params)


@st.composite
def valid_dags(draw: st.DrawFn, max_nodes: int = 12) -> DagSpec:
    """A DAG that must validate: unique ids, edges only to earlier nodes (so no cycle), known tools
    and agents, inputs that fit their schemas, templates only to declared params and ancestors."""
    ids = draw(st.lists(IDS, min_size=1, max_size=max_nodes, unique=True))
    params = draw(st.dictionaries(IDS, st.integers() | st.text(max_size=5), max_size=3))
    nodes: list[NodeSpec] = []
    ancestors: dict[str, set[str]] = {}
    for index, node_id in enumerate(ids):
        deps = draw(st.lists(st.sampled_from(ids[:index]), unique=True, max_size=3)) if index else []
        ancestors[node_id] = set(deps).union(*(ancestors[d] for d in deps))
        sources = [f"{{{{params.{p}}}}}" for p in params]
        sources += [f"{{{{nodes.{a}.output}}}}" for a in sorted(ancestors[node_id])]
        reference = st.sampled_from(sources) if sources else st.nothing()
        if draw(st.booleans()):
            text = draw(st.lists(reference | st.just("plain"), min_size=1, max_size=3).map(" and ".join))
            nodes.append(NodeSpec(id=node_id, agent="writer", prompt=f"Do {text}", depends_on=deps))
        elif draw(st.booleans()):
            # A template may stand for the integer: validation cannot know its type yet.
            n = draw(st.integers() | reference)
            nodes.append(NodeSpec(id=node_id, tool="counter", input={"n": n}, depends_on=deps))
        else:
            extra = draw(st.dictionaries(IDS, reference | st.integers(), max_size=3))
            nodes.append(NodeSpec(id=node_id, tool="noop", input=extra, depends_on=deps))
    return DagSpec(name="generated", params=params, nodes=nodes)


@UNTIMED
@given(valid_dags())
def test_a_well_formed_dag_has_no_problems(spec: DagSpec) -> None:
    assert check(spec) == []


@UNTIMED
@given(valid_dags(), st.data())
def test_run_params_must_be_declared(spec: DagSpec, data: st.DataObject) -> None:
    names = sorted(spec.params)
    declared = {k: 1 for k in data.draw(st.sets(st.sampled_from(names)))} if names else {}
    assert check(spec, params=declared) == []
    undeclared = data.draw(IDS.filter(lambda p: p not in spec.params))
    problems = check(spec, params={**declared, undeclared: 1})
    assert len(problems) == 1 and undeclared in problems[0]


@UNTIMED
@given(valid_dags(), st.data())
def test_validation_is_deterministic_and_independent_of_node_order_for_valid_dags(
    spec: DagSpec, data: st.DataObject
) -> None:
    shuffled = spec.model_copy(update={"nodes": data.draw(st.permutations(spec.nodes))})
    assert check(shuffled) == check(shuffled) == []


def _reaches(deps: dict[str, list[str]], start: str, goal: str) -> bool:
    """Whether `start` depends on `goal`, directly or through others."""
    stack, seen = [start], set()
    while stack:
        current = stack.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(deps[current])
    return False


@UNTIMED
@given(valid_dags(max_nodes=10).filter(lambda s: len(s.nodes) >= 2), st.data())
def test_a_back_edge_is_reported_as_a_cycle_through_real_edges(spec: DagSpec, data: st.DataObject) -> None:
    nodes = list(spec.nodes)
    ids = [n.id for n in nodes]
    deps = {n.id: list(n.depends_on) for n in nodes}
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :] if _reaches(deps, b, a)]
    if not pairs:  # no path yet: let the last node need the first
        nodes[-1] = nodes[-1].model_copy(update={"depends_on": [*nodes[-1].depends_on, ids[0]]})
        pairs = [(ids[0], ids[-1])]
    earlier, descendant = data.draw(st.sampled_from(pairs))
    # The earlier node now needs one of its own descendants: a cycle through that new edge.
    nodes = [
        n.model_copy(update={"depends_on": [*n.depends_on, descendant]}) if n.id == earlier else n
        for n in nodes
    ]
    problems = check(spec.model_copy(update={"nodes": nodes}))
    cycles = [p for p in problems if p.startswith("cycle: ")]
    assert cycles, problems
    edges = {(needed, n.id) for n in nodes for needed in n.depends_on}  # run order
    for cycle in cycles:
        names = cycle.removeprefix("cycle: ").split(" -> ")
        assert names[0] == names[-1] and len(names) >= 3, cycle
        assert all((a, b) in edges for a, b in itertools.pairwise(names)), cycle
        assert (descendant, earlier) in set(itertools.pairwise(names)), cycle


@UNTIMED
@given(valid_dags(), st.data())
def test_every_independent_defect_is_reported_at_once(spec: DagSpec, data: st.DataObject) -> None:
    nodes = list(spec.nodes)
    victim = data.draw(st.sampled_from([n.id for n in nodes]))
    defects = data.draw(
        st.sets(
            st.sampled_from(["unknown_dep", "unknown_tool", "unknown_agent", "unknown_param", "duplicate"]),
            min_size=1,
        )
    )
    added: list[NodeSpec] = []
    if "unknown_dep" in defects:
        added.append(NodeSpec(id="Zdep", tool="noop", depends_on=["missing_node"]))
    if "unknown_tool" in defects:
        added.append(NodeSpec(id="Ztool", tool="no_such_tool"))
    if "unknown_agent" in defects:
        added.append(NodeSpec(id="Zagent", agent="nobody", prompt="hi"))
    if "unknown_param" in defects:
        added.append(NodeSpec(id="Zparam", tool="noop", input={"x": "{{params.undeclared_zz}}"}))
    if "duplicate" in defects:
        added.append(NodeSpec(id=victim, tool="noop"))
    problems = check(spec.model_copy(update={"nodes": nodes + added}))
    expected = {
        "unknown_dep": "depends on unknown node 'missing_node'",
        "unknown_tool": "unknown tool 'no_such_tool'",
        "unknown_agent": "unknown agent 'nobody'",
        "unknown_param": "names an unknown param",
        "duplicate": f"duplicate node id {victim!r}",
    }
    for defect in defects:
        assert any(expected[defect] in p for p in problems), (defect, problems)
    assert len(problems) >= len(defects)


@UNTIMED
@given(valid_dags(max_nodes=8).filter(lambda s: len(s.nodes) >= 2), st.data())
def test_a_template_to_a_node_that_is_not_an_ancestor_is_refused(spec: DagSpec, data: st.DataObject) -> None:
    # The first node has no ancestors; make it reference any other node.
    other = data.draw(st.sampled_from([n.id for n in spec.nodes[1:]]))
    first = spec.nodes[0].model_copy(
        update={
            "tool": "noop",
            "agent": None,
            "prompt": None,
            "input": {"x": f"{{{{nodes.{other}.output}}}}"},
        }
    )
    problems = check(spec.model_copy(update={"nodes": [first, *spec.nodes[1:]]}))
    assert any("not an ancestor" in p and other in p for p in problems), problems


NODES = st.builds(
    NodeSpec,
    id=IDS,
    tool=st.sampled_from(["noop", "counter", "nope"]),
    input=st.dictionaries(st.text(max_size=4), st.text(max_size=12) | st.integers() | st.none(), max_size=3),
    depends_on=st.lists(IDS, max_size=3),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NODES, min_size=1, max_size=10), st.dictionaries(IDS, st.integers(), max_size=3))
def test_any_spec_pydantic_accepts_gets_a_list_of_problems_never_an_exception(
    nodes: list[NodeSpec], params: dict[str, int]
) -> None:
    spec = DagSpec(name="anything", nodes=nodes, params=params)
    problems = check(spec)
    assert all(isinstance(p, str) and p for p in problems)
    assert check(spec) == problems  # a stable order


def test_a_long_chain_validates_without_recursion() -> None:
    nodes = [NodeSpec(id="n0", tool="noop")]
    nodes += [NodeSpec(id=f"n{i}", tool="noop", depends_on=[f"n{i - 1}"]) for i in range(1, 5000)]
    assert check(DagSpec(name="chain", nodes=nodes)) == []
    nodes[0] = NodeSpec(id="n0", tool="noop", depends_on=["n4999"])
    (problem,) = check(DagSpec(name="ring", nodes=nodes))
    assert problem.startswith("cycle: n0 -> n1 -> ") and problem.endswith("n4999 -> n0")
