"""Visibility lists page by Temporal's page token: `?cursor=` from the answer's `X-Next-Cursor`."""

import asyncio
from typing import Any

import httpx

from tests.api.dag_helpers import make_dag, start, wait_closed

RUNS = 5


async def _pages(api: httpx.AsyncClient, path: str, **params: Any) -> list[list[str]]:
    """Every page of a list, following X-Next-Cursor (checking Link names the same page)."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.get(path, params=query)
        assert response.status_code == 200, response.text
        pages.append([e["id"] for e in response.json()])
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            assert "link" not in response.headers
            return pages
        assert f"cursor={cursor}" in response.headers["link"]
        assert response.headers["link"].endswith('>; rel="next"')


async def _executions(api: httpx.AsyncClient) -> tuple[int, list[str]]:
    dag = await make_dag(api, {"nodes": [{"id": "x", "tool": "noop"}]})
    started = [await start(api, dag["id"]) for _ in range(RUNS)]
    for execution_id in started:
        await wait_closed(api, execution_id)
    path = f"/api/v1/dags/{dag['id']}/executions"
    async with asyncio.timeout(60):  # visibility is eventually consistent
        while True:
            if len((await api.get(path, params={"limit": 500})).json()) >= RUNS:
                break
            await asyncio.sleep(0.2)
    return dag["id"], started


async def test_a_cursor_walks_every_execution_once_newest_first(api: httpx.AsyncClient) -> None:
    dag_id, started = await _executions(api)
    pages = await _pages(api, f"/api/v1/dags/{dag_id}/executions", limit=2)
    listed = [execution_id for page in pages for execution_id in page]
    assert sorted(listed) == sorted(started)  # each once
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 3
    whole = (await api.get(f"/api/v1/dags/{dag_id}/executions", params={"limit": 500})).json()
    assert listed == [e["id"] for e in whole]  # the same order as one big page
    same = await _pages(api, "/api/v1/dag-executions", dag_id=dag_id, limit=2)
    assert [i for page in same for i in page] == listed


async def test_an_offset_still_pages_and_cannot_be_mixed_with_a_cursor(api: httpx.AsyncClient) -> None:
    dag_id, _ = await _executions(api)
    path = f"/api/v1/dags/{dag_id}/executions"
    whole = [e["id"] for e in (await api.get(path, params={"limit": 500})).json()]
    skipped = await api.get(path, params={"limit": 2, "offset": 1})
    assert [e["id"] for e in skipped.json()] == whole[1:3]
    following = await api.get(path, params={"limit": 2, "cursor": skipped.headers["x-next-cursor"]})
    assert [e["id"] for e in following.json()] == whole[3:5]  # a cursor goes on from an offset
    beyond = await api.get(path, params={"limit": 2, "offset": len(whole)})
    assert beyond.json() == [] and "x-next-cursor" not in beyond.headers
    too_far = await api.get(path, params={"offset": 1001})
    assert too_far.status_code == 422
    first = await api.get(path, params={"limit": 2})
    cursor = first.headers["x-next-cursor"]
    mixed = await api.get(path, params={"limit": 2, "offset": 1, "cursor": cursor})
    assert mixed.status_code == 422
    assert mixed.json()["detail"] == "give a cursor or an offset, not both"


async def test_a_cursor_that_was_never_given_out_is_a_422(api: httpx.AsyncClient) -> None:
    valid = (await api.get("/api/v1/dag-executions", params={"limit": 1})).headers.get("x-next-cursor")
    tampered = [valid[:-2] + ("AA" if valid[-2:] != "AA" else "BB")] if valid else []
    for cursor in ("x", "AAAA", "not-a-real-cursor", *tampered):
        response = await api.get("/api/v1/dag-executions", params={"cursor": cursor})
        assert response.status_code == 422, (cursor, response.text)
        assert isinstance(response.json()["detail"], str)
    response = await api.get("/api/v1/runs", params={"cursor": "x"})
    assert response.status_code == 422
