"""The one error shape every route answers, and the statuses each route declares for it.

Every error is `{"detail": ...}` (plus `error`, the failure kind, for an upstream's 502/503/504):
`detail` is a sentence, FastAPI's list of refused fields (a malformed request), or a problem report
(a DAG spec or plan that failed validation, every problem at once). `declare_errors` writes into
each route the statuses its dependencies and inputs can produce, so the OpenAPI schema lists what
is really sent instead of FastAPI's default (422 with a list only) — by rule, not by hand per route.
"""

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_session, get_temporal


class ValidationProblem(BaseModel):
    """One field the request got wrong (the refused input itself is never echoed: it can be a key)."""

    loc: list[str | int]
    msg: str
    type: str


class ProblemReport(BaseModel):
    """Everything wrong with a DAG spec or a plan, in one answer."""

    model_config = ConfigDict(extra="allow")

    message: str
    problems: list[str]


class ErrorResponse(BaseModel):
    """Every error answer."""

    detail: str | list[ValidationProblem] | ProblemReport = Field(
        description="What is wrong: a sentence, the refused fields (422), or a problem report (422)"
    )
    error: str | None = Field(
        default=None, description="The upstream failure's kind on 502/503/504 (TemporalUnavailable, ...)"
    )


DESCRIPTIONS: dict[int, str] = {
    400: "The request body could not be parsed",
    401: "Missing or invalid credentials",
    403: "Authenticated, but not allowed",
    404: "What the request names does not exist",
    409: "The request contradicts the current state",
    413: "The request body is too large",
    415: "An attached file has a type that is not accepted",
    422: "The request is malformed or semantically invalid",
    502: "Temporal or a provider failed",
    503: "Temporal or a worker is unavailable; nothing was done",
    504: "A workflow the request waited on timed out",
}


def error(status_code: int, description: str | None = None) -> dict[str, Any]:
    """One `responses=` entry: the error shape with a description."""
    return {"model": ErrorResponse, "description": description or DESCRIPTIONS[status_code]}


def errors(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for several statuses at once."""
    return {code: error(code) for code in status_codes}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    """The route's dependant and every sub-dependency's, depth first."""
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def statuses_of(route: APIRoute) -> set[int]:
    """The error statuses a route can answer, from its inputs and what it depends on."""
    dependants = list(_dependants(route.dependant))
    calls = {d.call for d in dependants}
    path = any(d.path_params for d in dependants)
    has_body = route.body_field is not None
    found: set[int] = set()
    if has_body or path or any(d.query_params or d.header_params for d in dependants):
        found.add(422)  # validation (and DataError for values the database refuses)
    if has_body:
        found |= {400, 413}  # a body that does not parse (bytes that are not UTF-8); BodySizeLimit
    if path or (has_body and calls & {get_session, get_temporal}):
        found.add(404)  # the addressed resource, or one the body refers to
    writes = not (route.methods or set()) <= {"GET", "HEAD"}
    if get_temporal in calls:
        found |= {409, 502, 503}  # Temporal's own refusals, failures and absence
    if get_session in calls and writes:
        found.add(409)  # a uniqueness race lost, a state that forbids the change
    return found


_AS_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}


def _answers_json(route: APIRoute) -> bool:
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    return getattr(response_class, "media_type", None) in (None, "application/json")


def declare_errors(router: APIRouter, *, protected: bool = False) -> None:
    """Write each route's error statuses into its `responses` before the app includes it (an
    entry the route declared keeps its description and gains the shape). Idempotent.

    FastAPI documents an additional response's model under the route's own media type; a route
    that answers HTML or an event stream still sends its errors as JSON, so there the shape is
    declared as JSON content instead. `protected`: the router is included behind the bearer token."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        json_route = _answers_json(route)
        named = {int(code) for code, entry in route.responses.items() if entry.get("model") is ErrorResponse}
        for code in statuses_of(route) | named | ({401} if protected else set()):
            declared = dict(route.responses.get(code, {}))  # may be shared with other routes: copied
            if "content" in declared or declared.get("model", ErrorResponse) is not ErrorResponse:
                continue  # a body of its own (the readiness report, a 202)
            declared.pop("model", None)
            shape = {"model": ErrorResponse} if json_route else {"content": _AS_JSON}
            route.responses[code] = {"description": DESCRIPTIONS[code], **declared, **shape}
