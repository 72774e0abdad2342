"""Typos are errors: a request body field the route's schema does not know is refused with a 422
naming it and the closest known field, instead of being dropped (a node's `"requires_aproval":
true` was accepted and the node ran without approval).

Checked against the JSON schema of the route's body, not by `extra="forbid"` on the models: the
shared types (`DagSpec`, `NodeSpec`, `ModelRef`...) are also workflow payloads and stored rows,
where a field a newer release added must still decode on an older worker after a rollback. An
object schema with `properties` and no `additionalProperties` is a model that ignores extras:
its unknown keys are refused here; a schema that allows extras on purpose (`dict[str, Any]`,
`extra="allow"`) says so and is left alone.
"""

import difflib
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter

from api.json_guard import PARSED_BODY

Schema = dict[str, Any]
Path = list[str | int]
_SCHEMAS: dict[int, tuple[Schema, Schema]] = {}


def _body_schema(request: Request) -> tuple[Schema, Schema] | None:
    """(the body's JSON schema, its $defs) for the matched route, built once per route."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    if field is None:
        return None
    key = id(route)
    if key not in _SCHEMAS:
        schema = TypeAdapter(field.field_info.annotation).json_schema()
        _SCHEMAS[key] = (schema, schema.get("$defs", {}))
    return _SCHEMAS[key]


def _resolve(schema: Schema, defs: Schema) -> Schema:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if len(schema.get("allOf", [])) == 1:
        return _resolve(schema["allOf"][0], defs)
    return schema


def unknown_fields(value: Any, schema: Schema, defs: Schema, path: Path) -> list[tuple[Path, list[str]]]:
    """Every (path of an unknown key, the keys known there) in `value` under `schema`."""
    schema = _resolve(schema, defs)
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        found = [unknown_fields(value, variant, defs, path) for variant in variants]
        fitting = [f for f, v in zip(found, variants, strict=True) if _fits(value, _resolve(v, defs))]
        candidates = fitting or found
        return min(candidates, key=len)
    problems: list[tuple[Path, list[str]]] = []
    if isinstance(value, dict):
        properties: Schema = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            if key in properties:
                problems += unknown_fields(child, properties[key], defs, [*path, key])
            elif isinstance(extra, dict):
                problems += unknown_fields(child, extra, defs, [*path, key])
            elif properties and extra is None:
                problems.append(([*path, key], sorted(properties)))
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, child in enumerate(value):
                problems += unknown_fields(child, items, defs, [*path, index])
    return problems


def _fits(value: Any, schema: Schema) -> bool:
    """Whether a union variant is of the value's JSON type (the variant the value means)."""
    kind = schema.get("type")
    if kind is None:
        return True
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "null": value is None,
    }.get(kind, not isinstance(value, dict | list | str) and value is not None)


def _message(key: str | int, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known[:30])})"
    return f"unknown field '{key}'{hint}"


async def refuse_unknown_fields(request: Request) -> None:
    """A dependency of every protected route: 422 for each body field its schema does not know."""
    if request.method in ("GET", "HEAD", "DELETE") or "json" not in request.headers.get("content-type", ""):
        return
    found = _body_schema(request)
    if found is None:
        return
    state = request.scope.get("state") or {}
    if PARSED_BODY in state:  # parsed once already, by api/json_guard.py
        body = state[PARSED_BODY]
    else:
        try:
            body = await request.json()
        except ValueError:
            return  # malformed JSON is the body validation's to answer
    schema, defs = found
    problems = unknown_fields(body, schema, defs, [])
    if problems:
        raise RequestValidationError(
            [
                {"loc": ("body", *where), "msg": _message(where[-1], known), "type": "extra_forbidden"}
                for where, known in problems
            ]
        )
