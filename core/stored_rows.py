"""Stored data never breaks a read for everyone: a row that cannot become its public model (a JSON
column that does not parse, a value nested deeper than a serializer goes, a field a later release
limited) is left out of a list, with a warning naming it, and reading it alone is a 409 that says
what is wrong and how to fix it, instead of a 500 for every client.
"""

import json
import logging
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlmodel import SQLModel

from core.errors import Conflict

log = logging.getLogger(__name__)

M = TypeVar("M", bound=SQLModel)


class UnreadableJson(str):
    """What a JSON column that does not parse reads as (`read_json`): a value no model accepts as
    a dict or list, so the row fails its own validation, not the query that loaded it."""


def read_json(text: str) -> Any:
    """The engines' JSON deserializer: `json.loads`, but a column that does not parse (possible
    on SQLite, where JSON is text) reads as `UnreadableJson` instead of failing the whole query."""
    try:
        return json.loads(text)
    except ValueError as exc:
        return UnreadableJson(f"stored JSON that does not parse ({exc})")


class UnreadableRow(Conflict):
    """A stored row that cannot be answered as it is."""


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_input=False)[0]
        return f"{'.'.join(map(str, first['loc'])) or 'row'}: {first['msg']}"
    if isinstance(exc, RecursionError) or "depth exceeded" in str(exc):
        return "a value is nested too deep to answer"
    return f"{type(exc).__name__}: {exc}"[:300]


def public_row(model: type[M], row: Any, *, what: str, update: dict[str, Any] | None = None) -> M:
    """`row` as `model`, checked to serialize too; UnreadableRow (409) naming what is wrong."""
    try:
        public = model.model_validate(row, update=update)
        public.model_dump(mode="json")  # what the response will do: a 500 there is too late
    except (ValidationError, ValueError, TypeError, RecursionError) as exc:
        raise UnreadableRow(
            f"{what}'s stored data cannot be read ({_reason(exc)}); replace it with PATCH or delete it"
        ) from None
    return public


def public_rows(
    model: type[M], rows: list[Any], *, what: str, updates: list[dict[str, Any] | None] | None = None
) -> list[M]:
    """Every row that can be answered as `model`; the others are logged and left out."""
    answered = []
    for index, row in enumerate(rows):
        label = f"{what} {getattr(row, 'id', '?')}"
        try:
            answered.append(public_row(model, row, what=label, update=updates[index] if updates else None))
        except UnreadableRow as exc:
            log.warning("left out of a list: %s", exc)
    return answered
