"""A schemathesis hook module (`SCHEMATHESIS_HOOKS=tests.api.fuzz_checks`) for tests/api/test_fuzz.py.

`no_server_bug` replaces schemathesis' `not_a_server_error`: every 5xx fails, except a 502/504
whose `error` names a typed upstream failure. The fuzzer creates providers at whatever base URL it
draws (`https://0.com`), so an agent test on them answers "Bad Gateway: ProviderUnavailable" —
the right answer, not a bug. A 5xx of any other kind (a 500, a 502 naming a Python exception such
as `AttributeError`, a 503 while Temporal and the worker are up) fails the run.
"""

from typing import Any

import schemathesis
from schemathesis.core.failures import ServerError

from contracts import errors

UPSTREAM_KINDS = frozenset(
    {
        errors.PROVIDER_UNAVAILABLE,
        errors.PROVIDER_AUTH,
        errors.PROVIDER_REJECTED,
        errors.MODEL_OUTPUT_INVALID,
        "Timeout",  # 504: a workflow the request waited on timed out
    }
)
"""Failures of what the request reached out to (a provider), typed by the code that saw them."""


def _kind(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


@schemathesis.check
def no_server_bug(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx but a typed upstream failure (502/504)."""
    status = response.status_code
    if status < 500 or (status in (502, 504) and _kind(response) in UPSTREAM_KINDS):
        return None
    raise ServerError(
        operation=case.operation.label,
        status_code=status,
        message=f"{status} is a server bug here (error kind {_kind(response)!r})",
    )
