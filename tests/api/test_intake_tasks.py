"""Tasks people track (`/tasks`): create, read, list with filters, and the allowed transitions."""

import uuid
from typing import Any

import httpx
import pytest

TASKS = "/api/v1/tasks"


async def _task(api: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"title": f"task {uuid.uuid4().hex[:6]}", **extra}
    response = await api.post(TASKS, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _move(api: httpx.AsyncClient, task: dict[str, Any], status: str) -> httpx.Response:
    return await api.put(f"{TASKS}/{task['id']}/status", json={"status": status})


async def test_task_is_created_as_todo_and_read_back(api: httpx.AsyncClient) -> None:
    task = await _task(
        api,
        description="from the API",
        priority="high",
        due_at="2026-03-05T17:00:00+01:00",
        assignees=[" Anna ", "Anna", "Bob"],
    )
    assert (task["status"], task["priority"], task["message_id"]) == ("todo", "high", None)
    assert task["due_at"] == "2026-03-05T16:00:00Z"
    assert task["assignees"] == ["Anna", "Bob"]
    assert (await api.get(f"{TASKS}/{task['id']}")).json() == task


@pytest.mark.parametrize(
    "path",
    [
        ["in_progress", "done"],
        ["cancelled"],
        ["in_progress", "cancelled"],
        ["in_progress", "done", "todo", "in_progress"],  # reopened
    ],
)
async def test_allowed_transitions_move_the_task(api: httpx.AsyncClient, path: list[str]) -> None:
    task = await _task(api)
    for status in path:
        response = await _move(api, task, status)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        assert (response.json()["completed_at"] is not None) == (status == "done")
    assert (await api.get(f"{TASKS}/{task['id']}")).json()["status"] == path[-1]


async def test_a_disallowed_transition_is_409_naming_the_allowed_ones_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    task = await _task(api)
    response = await _move(api, task, "done")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "from todo to done" in detail and "in_progress, cancelled" in detail
    assert (await api.get(f"{TASKS}/{task['id']}")).json()["status"] == "todo"

    assert (await _move(api, task, "cancelled")).status_code == 200
    response = await _move(api, task, "todo")
    assert response.status_code == 409
    assert "none (cancelled is final)" in response.json()["detail"]


async def test_setting_the_status_a_task_has_changes_nothing(api: httpx.AsyncClient) -> None:
    task = await _task(api)
    response = await _move(api, task, "todo")
    assert response.status_code == 200
    assert response.json()["updated_at"] == task["updated_at"]


async def test_unknown_status_is_422_and_unknown_task_404(api: httpx.AsyncClient) -> None:
    task = await _task(api)
    for body in ({"status": "finished"}, {"status": None}, {}):
        response = await api.put(f"{TASKS}/{task['id']}/status", json=body)
        assert response.status_code == 422, response.text
    assert (await api.put(f"{TASKS}/2147483647/status", json={"status": "done"})).status_code == 404
    assert (await api.get(f"{TASKS}/2147483647")).status_code == 404
    assert (await api.get(f"{TASKS}/0")).status_code == 422


async def test_tasks_list_filters_by_status_priority_and_due_range_and_pages(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:6]
    early = await _task(api, title=f"early {tag}", priority="low", due_at="2030-01-01T09:00:00Z")
    late = await _task(api, title=f"late {tag}", priority="low", due_at="2030-01-03T09:00:00Z")
    undated = await _task(api, title=f"undated {tag}", priority="low")
    assert (await _move(api, late, "in_progress")).status_code == 200

    async def ids(**params: Any) -> list[int]:
        response = await api.get(TASKS, params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()]

    window = {"due_after": "2029-12-31T00:00:00Z", "due_before": "2030-01-04T00:00:00Z"}
    assert await ids(**window) == [late["id"], early["id"]]
    assert await ids(**window, status="todo") == [early["id"]]
    assert await ids(**window, status="in_progress", priority="low") == [late["id"]]
    assert await ids(due_after="2030-01-02T00:00:00Z", due_before="2030-01-04T00:00:00Z") == [late["id"]]
    assert await ids(**window, priority="high") == []
    assert undated["id"] in await ids(priority="low", status="todo")
    assert await ids(**window, limit=1, offset=1) == [early["id"]]
    for bad in ({"status": "finished"}, {"priority": "urgent"}, {"due_before": "soon"}, {"offset": -1}):
        assert (await api.get(TASKS, params=bad)).status_code == 422


async def test_bad_tasks_are_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    before = (await api.get(TASKS, params={"limit": 1})).json()
    for body in (
        {"title": ""},
        {"title": "x" * 201},
        {"title": "t", "priority": "urgent"},
        {"title": "t", "due_at": "2030-01-01T09:00:00"},  # no offset
        {"title": "t", "assignees": ["x" * 101]},
        {"title": "t", "assignees": "Anna"},
    ):
        response = await api.post(TASKS, json=body)
        assert response.status_code == 422, (body, response.text)
    assert (await api.get(TASKS, params={"limit": 1})).json() == before
    assert (await anon.get(TASKS)).status_code == 401
    assert (await anon.put(f"{TASKS}/1/status", json={"status": "done"})).status_code == 401
