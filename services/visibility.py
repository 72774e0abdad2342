"""One page of a Temporal visibility list, addressed by Temporal's own page token.

Lists of runs and executions page by cursor: the cursor is Temporal's `next_page_token` (URL-safe
base64), so reading page 200 costs one visibility call of `limit` rows, as reading page 1 does.
An offset (kept for callers that page that way) has to walk every row before it.
"""

import base64
import binascii
import hashlib
import hmac

from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from core.errors import Invalid
from services.read_cache import ReadCache
from services.temporal_errors import rpc_error

MAX_OFFSET = 1_000
"""How far an offset may reach into a visibility list: Temporal reads every row before it (10,000
rows in took 40 s under load and timed out; a cursor costs one page however deep). One skip call."""
FRESH_S = 1.0
"""How long a page read from visibility is answered again (`Cache-Control: max-age` of a list)."""
STALE_S = 1.0
"""How long after that an expired page is still answered while one call refreshes it."""
PAGES: ReadCache[tuple[list[WorkflowExecution], str | None]] = ReadCache(
    max_entries=512, ttl_s=FRESH_S, stale_s=STALE_S
)
"""Pages kept for `FRESH_S`, one load per page at a time, and answered for `STALE_S` more while
one call refreshes them, so a page polled all the time is never waited for. Visibility is
eventually consistent already (a closed run shows as closed there a moment after it closed), and
on the dev server's SQLite one list call scans every row of the namespace (10-400 ms under load):
with 100 clients polling a list, each kept second saves about a hundred calls. This process's own
changes (`lists_changed`) drop every kept page, so whoever starts, cancels or deletes a run sees it
listed as soon as visibility has it. A page read by its cursor has the page after it read ahead:
whoever walks a list by cursor asks for that one next."""


def lists_changed() -> None:
    """Forget every kept page: this process just started, cancelled or deleted a listed run."""
    PAGES.clear()


_CHECK_BYTES = 8


def _check(token: bytes) -> bytes:
    return hashlib.blake2b(token, digest_size=_CHECK_BYTES, person=b"goalflow-cursor").digest()


def encode_cursor(token: bytes) -> str:
    """Temporal's page token, with a check, as a URL-safe string."""
    return base64.urlsafe_b64encode(token + _check(token)).decode().rstrip("=")


def decode_cursor(cursor: str) -> bytes:
    """The page token a cursor holds (422 for one this API did not give out).

    The check keeps made-up cursors away from Temporal, which fails on a token it cannot read only
    after retrying for seconds. It is no secret: a page token names a position in a list the
    caller may read anyway."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    token, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if not token or not hmac.compare_digest(check, _check(token)):
        raise Invalid("cursor is not one this API gave out (pass X-Next-Cursor as answered)")
    return token


async def list_page(
    client: Client, query: str, *, limit: int, cursor: str | None, offset: int = 0, what: str
) -> tuple[list[WorkflowExecution], str | None]:
    """Up to `limit` executions matching `query`, newest first, and the cursor of the next page
    (None on the last). With an offset instead of a cursor, Temporal walks the rows before it."""
    if cursor is not None and offset:
        raise Invalid("give a cursor or an offset, not both")
    if offset > MAX_OFFSET:
        raise Invalid(f"offset over {MAX_OFFSET}: page with the cursor instead")
    token = decode_cursor(cursor) if cursor is not None else None
    key = (client.namespace, query, limit, token, offset)
    found, following = await PAGES.get(
        key, lambda: _load(client, query, limit=limit, token=token, offset=offset, what=what)
    )
    if token is not None and following is not None:
        ahead = decode_cursor(following)
        PAGES.prefetch(
            (client.namespace, query, limit, ahead, 0),
            lambda: _load(client, query, limit=limit, token=ahead, offset=0, what=what),
        )
    return found, following


async def _load(
    client: Client, query: str, *, limit: int, token: bytes | None, offset: int, what: str
) -> tuple[list[WorkflowExecution], str | None]:
    try:
        if offset:
            # Skip in one raw call (Temporal still reads the rows; they are not decoded here),
            # then read the page from where that call ended, as a cursor would.
            skipped = await client.workflow_service.list_workflow_executions(
                ListWorkflowExecutionsRequest(namespace=client.namespace, page_size=offset, query=query),
                retry=True,
            )
            if not skipped.next_page_token:
                return [], None
            token = skipped.next_page_token
        pages = client.list_workflows(query, page_size=limit, next_page_token=token)
        await pages.fetch_next_page()
    except RPCError as exc:
        raise rpc_error(exc, what=what) from None
    found = list(pages.current_page or [])
    following = pages.next_page_token
    return found, encode_cursor(following) if following and found else None
