"""`{{params.k}}` and `{{nodes.<id>.output[.field...]}}` templates in node inputs and prompts.

Pure and deterministic: DagWorkflow resolves templates in workflow code, and validation checks the
references before anything runs. A string that is exactly one template keeps the referenced
value's type; templates inside a longer string are stringified (JSON for dicts and lists). An
output stored as an artifact resolves to `artifact://<name>` unless the caller supplies the
artifact's text (agent prompts do, after loading it in an activity).
"""

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.dag import NodeOutput
from contracts.tools import ARTIFACT_REF_PREFIX

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


class TemplateError(ValueError):
    """A template that cannot be parsed or resolved."""


@dataclass(frozen=True)
class Reference:
    """One parsed template: `params.<path>` or `nodes.<node>.output.<path>`."""

    raw: str
    root: str  # "params" or "nodes"
    node: str | None
    path: tuple[str, ...]


def parse(expr: str) -> Reference:
    """Parse the text between `{{` and `}}`."""
    parts = expr.split(".")
    if any(not _SEGMENT.match(part) for part in parts):
        raise TemplateError(f"malformed template {{{{{expr}}}}}")
    if parts[0] == "params" and len(parts) >= 2:
        return Reference(raw=expr, root="params", node=None, path=tuple(parts[1:]))
    if parts[0] == "nodes" and len(parts) >= 3 and parts[2] == "output":
        return Reference(raw=expr, root="nodes", node=parts[1], path=tuple(parts[3:]))
    raise TemplateError(
        f"unknown template {{{{{expr}}}}}: use {{{{params.<name>}}}} or {{{{nodes.<id>.output}}}}"
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def template_texts(value: Any) -> list[str]:
    """The text inside every `{{...}}` in a value (strings inside dicts and lists included)."""
    return [m.group(1) for text in _strings(value) for m in TEMPLATE.finditer(text)]


def references(value: Any) -> list[Reference]:
    """Every template in a value, parsed; raises on the first bad one."""
    return [parse(text) for text in template_texts(value)]


def has_template(value: Any) -> bool:
    """Whether a string holds at least one `{{...}}`."""
    return isinstance(value, str) and TEMPLATE.search(value) is not None


def _walk(value: Any, path: tuple[str, ...], raw: str) -> Any:
    for segment in path:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            raise TemplateError(f"{{{{{raw}}}}}: no {segment!r} in the referenced value")
    return value


def lookup(
    ref: Reference,
    *,
    params: Mapping[str, Any],
    outputs: Mapping[str, NodeOutput],
    artifact_texts: Mapping[str, str] | None = None,
) -> Any:
    """The value a reference stands for."""
    if ref.root == "params":
        if ref.path[0] not in params:
            raise TemplateError(f"{{{{{ref.raw}}}}}: no param {ref.path[0]!r}")
        return _walk(params, ref.path, ref.raw)
    assert ref.node is not None
    output = outputs.get(ref.node)
    if output is None:
        raise TemplateError(f"{{{{{ref.raw}}}}}: node {ref.node!r} has no output")
    if output.artifact is not None:
        text = (artifact_texts or {}).get(output.artifact)
        if text is None:
            if ref.path:
                raise TemplateError(
                    f"{{{{{ref.raw}}}}}: the output of {ref.node!r} is the artifact "
                    f"{output.artifact!r}; reference it whole"
                )
            return f"{ARTIFACT_REF_PREFIX}{output.artifact}"
        if not ref.path:
            return text
        try:
            stored = json.loads(text)
        except ValueError:
            raise TemplateError(
                f"{{{{{ref.raw}}}}}: the output of {ref.node!r} (artifact {output.artifact!r}) is not "
                "JSON, so it has no fields; reference it whole"
            ) from None
        return _walk(stored, ref.path, ref.raw)
    return _walk(output.value, ref.path, ref.raw)


def stringify(value: Any) -> str:
    """How a value reads inside a longer string: strings as is, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def resolve(
    value: Any,
    *,
    params: Mapping[str, Any],
    outputs: Mapping[str, NodeOutput],
    artifact_texts: Mapping[str, str] | None = None,
) -> Any:
    """A copy of `value` with every template replaced by what it references."""
    if isinstance(value, dict):
        return {
            key: resolve(item, params=params, outputs=outputs, artifact_texts=artifact_texts)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            resolve(item, params=params, outputs=outputs, artifact_texts=artifact_texts) for item in value
        ]
    if not isinstance(value, str) or "{{" not in value:
        return value
    whole = TEMPLATE.fullmatch(value)
    if whole is not None:
        return lookup(parse(whole.group(1)), params=params, outputs=outputs, artifact_texts=artifact_texts)
    return TEMPLATE.sub(
        lambda m: stringify(
            lookup(parse(m.group(1)), params=params, outputs=outputs, artifact_texts=artifact_texts)
        ),
        value,
    )
