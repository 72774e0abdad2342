"""Template resolution: types kept for whole templates, JSON inside strings, artifacts by ref."""

import pytest

from contracts.dag import NodeOutput
from contracts.templates import TemplateError, references, resolve

OUTPUTS = {
    "a": NodeOutput(value={"n": 3, "items": [{"x": 1}], "name": "ann"}),
    "big": NodeOutput(artifact="run-big.json"),
}
PARAMS = {"week": "W47", "cfg": {"depth": 2}}


def r(value: object, **kw: object) -> object:
    return resolve(value, params=PARAMS, outputs=OUTPUTS, **kw)  # type: ignore[arg-type]


def test_whole_template_keeps_type() -> None:
    assert r("{{nodes.a.output.n}}") == 3
    assert r("{{ params.cfg }}") == {"depth": 2}
    assert r("{{nodes.a.output.items.0.x}}") == 1


def test_embedded_templates_are_stringified_as_json() -> None:
    assert r("w={{params.week}} cfg={{params.cfg}} n={{nodes.a.output.n}}") == 'w=W47 cfg={"depth": 2} n=3'


def test_nested_structures_are_resolved() -> None:
    assert r({"a": ["{{params.week}}", {"b": "{{nodes.a.output.name}}"}], "k": 5}) == {
        "a": ["W47", {"b": "ann"}],
        "k": 5,
    }


def test_artifact_outputs_resolve_to_a_reference_or_loaded_text() -> None:
    assert r("{{nodes.big.output}}") == "artifact://run-big.json"
    assert r("see {{nodes.big.output}}", artifact_texts={"run-big.json": "TEXT"}) == "see TEXT"
    with pytest.raises(TemplateError):
        r("{{nodes.big.output.field}}")


def test_missing_references_raise() -> None:
    with pytest.raises(TemplateError):
        r("{{params.nope}}")
    with pytest.raises(TemplateError):
        r("{{nodes.a.output.missing}}")
    with pytest.raises(TemplateError):
        r("{{nodes.zzz.output}}")


def test_references_parse_and_reject_bad_syntax() -> None:
    [ref] = references({"x": "{{nodes.a.output.n}}"})
    assert (ref.root, ref.node, ref.path) == ("nodes", "a", ("n",))
    with pytest.raises(TemplateError):
        references("{{nodes.a}}")
