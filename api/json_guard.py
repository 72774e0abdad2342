"""Structure limits at the door: every JSON request body is checked before any route reads it.

A body nested deeper than `MAX_DEPTH`, or holding a NUL character or a number that is not finite
(`NaN`, `Infinity`, `1e400`), is answered 422 naming the field, and nothing is stored or started.
Without it such values reached the database and Temporal: a goal with params nested 256 levels
deep was stored and then broke every read of the goal list; NUL bytes were stored on SQLite and
refused on PostgreSQL; non-finite numbers became `null` on the way out. One check for every route,
so a new route cannot forget it; Pydantic has no depth limit, and its `allow_inf_nan` does not
reach the `Any` values of params and tool inputs.
"""

import json
import math
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import answer_json

MAX_DEPTH = 32
"""Levels of objects and arrays a body may nest (a DAG spec with a node's input uses about 6)."""


class _NonFinite:
    """Stands for a number JSON parsing made infinite or NaN, so the walk can name its field."""

    def __init__(self, token: str) -> None:
        self.token = token


def _parse_float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


Path = list[str | int]


def _children(value: Any, path: Path) -> Iterator[tuple[Any, Path, str | None]]:
    """(child, its path, its key when the key itself must be checked)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield child, [*path, key], key
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield child, [*path, index], None


def problem_of(data: Any, *, max_depth: int = MAX_DEPTH) -> tuple[Path, str, str] | None:
    """The first (path, message, type) wrong with parsed JSON, or None. Iterative: a body nested
    thousands of levels deep must not exhaust the stack here either."""
    stack: list[tuple[Any, Path, int]] = [(data, [], 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= max_depth:
                return path, f"nested deeper than {max_depth} levels", "too_deep"
            for child, child_path, key in reversed(list(_children(value, path))):
                if key is not None and "\x00" in key:
                    return child_path, "a key holds a NUL character", "nul_character"
                stack.append((child, child_path, depth + 1))
        elif isinstance(value, str) and "\x00" in value:
            return path, "holds a NUL character", "nul_character"
        elif isinstance(value, _NonFinite):
            return path, f"{value.token} is not a finite number", "finite_number"
    return None


PARSED_BODY = "goalflow.json_body"
"""Where a body that passed the guard is left, parsed, in the request's scope state, so the route's
own checks (api/unknown_fields.py) need not parse it again."""
_UNPARSED = object()


def parse_body(body: bytes, *, max_depth: int = MAX_DEPTH) -> tuple[Any, tuple[Path, str, str] | None]:
    """(the parsed body, what is wrong with it or None); a body that does not parse is
    (`_UNPARSED`, None): the route's to answer, with FastAPI's usual `json_invalid` 422."""
    try:
        data = json.loads(body, parse_constant=_NonFinite, parse_float=_parse_float)
    except RecursionError:
        return _UNPARSED, ([], f"nested deeper than {max_depth} levels", "too_deep")
    except ValueError:
        return _UNPARSED, None
    return data, problem_of(data, max_depth=max_depth)


def check_body(body: bytes, *, max_depth: int = MAX_DEPTH) -> tuple[Path, str, str] | None:
    """What is wrong with a JSON body, or None."""
    return parse_body(body, max_depth=max_depth)[1]


def _is_json(scope: Scope) -> bool:
    content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
    return content_type == b"application/json" or content_type.endswith(b"+json")


class JsonGuard:
    """ASGI middleware: read a JSON body whole (BodySizeLimit, outside it, caps its size), refuse
    it with a 422 naming the field when `check_body` finds a problem, else hand it on unchanged."""

    def __init__(self, app: ASGIApp, *, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to check
                await self.app(scope, _replaying([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        data, problem = parse_body(body, max_depth=self.max_depth)
        if problem is not None:
            path, what, kind = problem
            await answer_json(send, 422, {"detail": [{"loc": ["body", *path], "msg": what, "type": kind}]})
            return
        if data is not _UNPARSED:  # nothing non-finite is left in a body that passed
            scope.setdefault("state", {})[PARSED_BODY] = data
        await self.app(scope, _replaying([{"type": "http.request", "body": body}], receive), send)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that answers `messages` first, then the real one (for the disconnect)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
