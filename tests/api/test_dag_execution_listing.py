"""`GET /dag-executions` tells the truth: an execution that continued-as-new is listed once with
its real status, every status filter (suspended too) is one visibility query on `DagStatus`, and
a page read from visibility is reused for a second unless this process changed a run."""

import asyncio
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from contracts.dag import ExecutionStatus
from contracts.search import DAG_STATUS
from core.settings import Settings
from services import visibility
from services.dag_execution_list import executions_query
from tests.api.dag_direct import chain, start_direct
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_for
from tests.api.goal_helpers import wait_visible


async def _listed(api: httpx.AsyncClient, dag_id: int, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/dag-executions", params={"dag_id": dag_id, "limit": 100, **params})
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_a_continued_as_new_dag_is_listed_once_as_succeeded(
    api: httpx.AsyncClient, client: Client, settings: Settings
) -> None:
    dag = await make_dag(api, chain(5))
    execution_id = await start_direct(client, settings, dag, nodes_per_run=2)
    assert (await wait_closed(api, execution_id))["status"] == "succeeded"
    # Visibility holds three runs of this id (two continued-as-new); wait until all are indexed.
    await wait_visible(client, f'WorkflowId="{execution_id}" AND ExecutionStatus="Completed"', 1)
    assert len(await wait_visible(client, f'WorkflowId="{execution_id}"', 3)) == 3

    listed = await _listed(api, dag["id"])
    assert [(e["id"], e["status"]) for e in listed] == [(execution_id, "succeeded")]
    assert [e["id"] for e in await _listed(api, dag["id"], status="succeeded")] == [execution_id]
    assert await _listed(api, dag["id"], status="failed") == []
    assert await _listed(api, dag["id"], status="running") == []


async def test_the_suspended_filter_finds_a_suspended_execution_by_its_search_attribute(
    api: httpx.AsyncClient, client: Client
) -> None:
    dag = await make_dag(
        api, {"nodes": [{"id": "calc", "tool": "calculator", "input": {"expression": "1/0"}}]}
    )
    response = await api.post("/api/v1/execute-dag", json={"dag_id": dag["id"]})
    execution_id = response.json()["id"]
    await wait_for(api, execution_id, {"suspended"})

    # What `temporal workflow list --query 'DagStatus="suspended"'` answers.
    [found] = await wait_visible(client, f'WorkflowId="{execution_id}" AND DagStatus="suspended"', 1)
    assert found.typed_search_attributes.get(DAG_STATUS) == "suspended"
    # The API's filter is that one query (no status query per running execution).
    query = executions_query(dag["id"], ExecutionStatus.suspended)
    assert "DagStatus = 'suspended'" in query
    assert [wf.id async for wf in client.list_workflows(query)] == [execution_id]

    assert [(e["id"], e["status"]) for e in await _listed(api, dag["id"], status="suspended")] == [
        (execution_id, "suspended")
    ]
    assert await _listed(api, dag["id"], status="running") == []
    assert [e["status"] for e in await _listed(api, dag["id"])] == ["suspended"]

    # Resumed by skipping the node, it fails (on_failure suspend ends failed) and says so.
    skipped = await api.post(f"/api/v1/resume-dag/{execution_id}", json={"node_id": "calc", "action": "skip"})
    assert skipped.status_code == 200, skipped.text
    closed = await wait_closed(api, execution_id)
    for _ in range(100):
        listed = await _listed(api, dag["id"], status=closed["status"])
        if listed:
            break
        await asyncio.sleep(0.2)
    assert [e["id"] for e in listed] == [execution_id]
    assert await _listed(api, dag["id"], status="suspended") == []


async def test_a_list_page_is_reused_for_its_window_and_dropped_when_this_process_changes_a_run(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    load = visibility._load

    async def counted(client: Client, query: str, **kwargs: Any) -> Any:
        loads.append(query)
        return await load(client, query, **kwargs)

    monkeypatch.setattr(visibility, "_load", counted)
    monkeypatch.setattr(visibility.PAGES, "ttl_s", 60.0)  # a window no slow machine outlasts
    dag = await make_dag(api, {"nodes": [{"id": "x", "tool": "noop"}]})
    first = await start(api, dag["id"])
    await wait_closed(api, first)
    for _ in range(100):  # visibility is eventually consistent: until it lists the run closed
        visibility.lists_changed()
        if [e["status"] for e in await _listed(api, dag["id"])] == ["succeeded"]:
            break
        await asyncio.sleep(0.2)
    visibility.lists_changed()
    loads.clear()
    pages = [await _listed(api, dag["id"]) for _ in range(10)]
    assert pages == [pages[0]] * 10
    assert len(loads) == 1, "ten reads within the window cost one visibility call"

    second = await start(api, dag["id"])  # this process's own change drops the kept pages
    await _listed(api, dag["id"])
    assert len(loads) == 2
    for _ in range(100):
        ids = [e["id"] for e in await _listed(api, dag["id"])]
        if second in ids:
            break
        visibility.lists_changed()  # the window is 60 s here; in service it is FRESH_S
        await asyncio.sleep(0.2)
    assert ids == [second, first]


async def test_a_page_read_by_cursor_has_the_next_page_read_ahead(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[bytes | None] = []
    load = visibility._load

    async def counted(client: Client, query: str, **kwargs: Any) -> Any:
        loads.append(kwargs["token"])
        return await load(client, query, **kwargs)

    monkeypatch.setattr(visibility, "_load", counted)
    monkeypatch.setattr(visibility.PAGES, "ttl_s", 60.0)
    dag = await make_dag(api, {"nodes": [{"id": "x", "tool": "noop"}]})
    ids = [await start(api, dag["id"]) for _ in range(3)]
    for _ in range(100):  # until visibility lists all three
        visibility.lists_changed()
        if len(await _listed(api, dag["id"])) == 3:
            break
        await asyncio.sleep(0.2)
    visibility.lists_changed()
    loads.clear()

    async def page(cursor: str | None) -> tuple[list[str], str | None]:
        params: dict[str, Any] = {"dag_id": dag["id"], "limit": 1, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/api/v1/dag-executions", params=params)
        return [e["id"] for e in response.json()], response.headers.get("x-next-cursor")

    first, second_cursor = await page(None)
    assert len(loads) == 1  # page 1 is no sign of a walk: nothing read ahead
    second, third_cursor = await page(second_cursor)
    assert third_cursor is not None
    for _ in range(50):  # the read ahead runs in the background
        if len(loads) == 3:
            break
        await asyncio.sleep(0.1)
    assert len(loads) == 3, "page 3 was not read ahead when page 2 was read by its cursor"
    third, _ = await page(third_cursor)
    assert first + second + third == ids[::-1]
    assert loads.count(visibility.decode_cursor(third_cursor)) == 1  # read once, ahead of its reader
