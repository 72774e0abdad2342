"""Properties of template resolution (contracts/templates.py), over generated values and templates."""

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.dag import NodeOutput
from contracts.templates import TemplateError, parse, references, resolve, stringify

UNTIMED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""No per-example deadline: a timing is no property, and the machine is shared."""

SEGMENT = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
PLAIN_TEXT = st.text(max_size=30).filter(lambda s: "{{" not in s)
PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | PLAIN_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
"""Values with no `{{` in any string: nothing to resolve."""


def _resolve(value: Any, params: dict[str, Any] | None = None) -> Any:
    return resolve(value, params=params or {}, outputs={})


@UNTIMED
@given(PLAIN)
def test_a_value_without_templates_resolves_to_itself(value: Any) -> None:
    assert _resolve(value) == value
    assert references(value) == []


@UNTIMED
@given(SEGMENT, JSON)
def test_a_whole_template_keeps_the_value_and_its_type(name: str, value: Any) -> None:
    resolved = _resolve(f"{{{{params.{name}}}}}", {name: value})
    assert resolved == value
    assert type(resolved) is type(value)


@UNTIMED
@given(SEGMENT, JSON, PLAIN_TEXT, PLAIN_TEXT)
def test_an_embedded_template_reads_as_its_stringified_value(
    name: str, value: Any, before: str, after: str
) -> None:
    text = f"{before}X{{{{ params.{name} }}}}Y{after}"
    assert _resolve(text, {name: value}) == f"{before}X{stringify(value)}Y{after}"


@UNTIMED
@given(JSON)
def test_stringify_keeps_strings_and_writes_everything_else_as_json(value: Any) -> None:
    text = stringify(value)
    if isinstance(value, str):
        assert text == value
    else:
        assert json.loads(text) == value


@UNTIMED
@given(st.dictionaries(SEGMENT, JSON, min_size=1, max_size=5), st.data())
def test_templates_anywhere_in_a_structure_resolve_in_place(
    params: dict[str, Any], data: st.DataObject
) -> None:
    names = sorted(params)
    leaf = st.sampled_from(names).map(lambda n: ("{{params." + n + "}}", params[n]))
    pairs = data.draw(
        st.recursive(
            leaf | PLAIN_TEXT.map(lambda s: (s, s)),
            lambda inner: (
                st.lists(inner, max_size=3).map(lambda xs: ([t for t, _ in xs], [v for _, v in xs]))
                | st.dictionaries(SEGMENT, inner, max_size=3).map(
                    lambda d: ({k: t for k, (t, _) in d.items()}, {k: v for k, (_, v) in d.items()})
                )
            ),
            max_leaves=8,
        )
    )
    template, expected = pairs
    snapshot = json.dumps(template, sort_keys=True)
    assert _resolve(template, params) == expected
    assert json.dumps(template, sort_keys=True) == snapshot  # the input is not changed


@UNTIMED
@given(SEGMENT, st.lists(SEGMENT, max_size=4))
def test_a_node_reference_parses_to_its_node_and_path(node: str, path: list[str]) -> None:
    expr = ".".join(["nodes", node, "output", *path])
    ref = parse(expr)
    assert (ref.root, ref.node, ref.path, ref.raw) == ("nodes", node, tuple(path), expr)
    assert references({"a": [f"x {{{{{expr}}}}} y"]}) == [ref]


@UNTIMED
@given(SEGMENT, JSON, st.data())
def test_a_path_into_a_node_output_reads_what_is_there(node: str, value: Any, data: st.DataObject) -> None:
    # Walk a random existing path into the value, then check the template reads exactly that.
    path: list[str] = []
    current = value
    while isinstance(current, dict | list) and current and data.draw(st.booleans()):
        if isinstance(current, dict):
            keys = [k for k in current if parse_safe(k)]
            if not keys:
                break
            key = data.draw(st.sampled_from(sorted(keys)))
            path.append(key)
            current = current[key]
        else:
            index = data.draw(st.integers(0, len(current) - 1))
            path.append(str(index))
            current = current[index]
    expr = ".".join(["nodes", node, "output", *path])
    assert resolve("{{" + expr + "}}", params={}, outputs={node: NodeOutput(value=value)}) == current


def parse_safe(key: str) -> bool:
    """A dict key a template path can name (segments are [A-Za-z0-9_-]+)."""
    try:
        parse(f"params.{key}")
    except TemplateError:
        return False
    return True


@UNTIMED
@given(SEGMENT, SEGMENT, st.text(max_size=40))
def test_an_artifact_output_is_a_reference_unless_its_text_is_supplied(
    node: str, name: str, text: str
) -> None:
    outputs = {node: NodeOutput(artifact=name)}
    whole = "{{nodes." + node + ".output}}"
    assert resolve(whole, params={}, outputs=outputs) == f"artifact://{name}"
    assert resolve(whole, params={}, outputs=outputs, artifact_texts={name: text}) == text


PATH = st.lists(SEGMENT | st.integers(0, 3).map(str), max_size=3)
EXPRESSIONS = st.one_of(
    st.text(max_size=40),
    st.tuples(st.sampled_from(["a", "b", "c"]), PATH).map(
        lambda t: ".".join(["nodes", t[0], "output", *t[1]])
    ),
    st.tuples(SEGMENT, PATH).map(lambda t: ".".join(["params", t[0], *t[1]])),
)
"""Anything between the braces, and well-formed references to inline (a), artifact (b) and
missing (c) outputs and to params."""


@UNTIMED
@given(
    EXPRESSIONS, JSON, st.dictionaries(SEGMENT, JSON, max_size=3), st.text(max_size=40) | JSON.map(json.dumps)
)
def test_any_template_resolves_or_raises_a_template_error(
    expr: str, output: Any, params: dict[str, Any], artifact_text: str
) -> None:
    """Whatever is written between the braces, against inline or artifact outputs: a value or a
    TemplateError (which fails the node with its message), never another exception."""
    outputs = {"a": NodeOutput(value=output), "b": NodeOutput(artifact="b.json")}
    for text in ("{{" + expr + "}}", "x {{" + expr + "}} y"):
        with contextlib.suppress(TemplateError):
            resolve(text, params=params, outputs=outputs, artifact_texts={"b.json": artifact_text})


def test_a_field_of_an_artifact_that_is_not_json_is_a_template_error_naming_it() -> None:
    outputs = {"b": NodeOutput(artifact="b.md")}
    try:
        resolve("{{nodes.b.output.total}}", params={}, outputs=outputs, artifact_texts={"b.md": "# report"})
    except TemplateError as exc:
        assert "(artifact 'b.md') is not JSON" in str(exc)
    else:
        raise AssertionError("resolved a field of plain text")
