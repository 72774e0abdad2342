"""Cursor paging for lists read from Temporal visibility (runs, DAG executions).

`?limit=` sets the page size; the answer's `X-Next-Cursor` header (and a `Link: <...>; rel="next"`)
names the next page, fetched with `?cursor=`, until a page comes without one. The body stays the
plain list. `?offset=` still works for the first 1,000 rows, but walks every row before it.
"""

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from services.visibility import MAX_OFFSET

CURSOR_HEADERS: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "X-Next-Cursor": {
                "description": "Pass as `?cursor=` for the next page; absent on the last page",
                "schema": {"type": "string"},
            },
            "Link": {
                "description": 'The next page\'s URL, `<...>; rel="next"`; absent on the last page',
                "schema": {"type": "string"},
            },
        }
    }
}


class CursorPage:
    """`limit`, and `cursor` (or the older `offset`)."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=4096,
                pattern=r"^[A-Za-z0-9_-]+$",
                description="`X-Next-Cursor` of the previous page",
            ),
        ] = None,
        offset: Annotated[
            int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip; prefer `cursor`, which stays fast")
        ] = 0,
    ) -> None:
        self.limit = limit
        self.cursor = cursor
        self.offset = offset


CursorPageDep = Annotated[CursorPage, Depends()]


def link_next(request: Request, response: Response, next_cursor: str | None) -> None:
    """Name the next page in the headers, when there is one."""
    if next_cursor is None:
        return
    url = request.url.remove_query_params("offset").include_query_params(cursor=next_cursor)
    response.headers["X-Next-Cursor"] = next_cursor
    response.headers["Link"] = f'<{url}>; rel="next"'
