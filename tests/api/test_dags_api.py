"""`/dags`: explicit specs validated in one 422, CRUD, schedules, starting executions."""

import asyncio
from typing import Any

import httpx
from temporalio.client import Client

from contracts.search import DAG_ID, RUN_KIND
from tests.api.dag_helpers import make_dag, start, wait_closed
from tests.conftest import unique

ADD = {
    "nodes": [
        {"id": "add", "tool": "calculator", "input": {"expression": "{{params.expr}}"}},
        {"id": "echo", "tool": "noop", "input": {"value": "{{nodes.add.output}}"}, "depends_on": ["add"]},
    ],
    "params": {"expr": "1 + 1"},
}


async def test_create_get_list_and_filter_dags(api: httpx.AsyncClient) -> None:
    tag = unique("listed")
    first = await make_dag(api, ADD, name=f"{tag}-one")
    second = await make_dag(api, ADD, name=f"{tag}-two", description="second one")
    assert first["spec"]["nodes"][0]["id"] == "add"
    assert first["spec"]["params"] == {"expr": "1 + 1"}
    assert second["description"] == "second one"
    assert first["schedule"] is None

    got = await api.get(f"/api/v1/dags/{first['id']}")
    assert got.status_code == 200
    assert got.json() == first

    listed = await api.get("/api/v1/dags", params={"name": tag})
    assert [d["id"] for d in listed.json()] == [first["id"], second["id"]]
    paged = await api.get("/api/v1/dags", params={"name": tag, "limit": 1, "offset": 1})
    assert [d["id"] for d in paged.json()] == [second["id"]]
    assert (await api.get("/api/v1/dags", params={"limit": 0})).status_code == 422


async def test_invalid_spec_is_one_422_listing_every_problem(api: httpx.AsyncClient) -> None:
    spec = {
        "name": "bad",
        "nodes": [
            {"id": "a", "tool": "no_such_tool"},
            {"id": "b", "tool": "calculator", "input": {"expression": 5}, "depends_on": ["ghost"]},
            {"id": "c", "agent": "nobody-here", "prompt": "{{nodes.d.output}}", "depends_on": ["d"]},
            {"id": "d", "tool": "noop", "depends_on": ["c"]},
            {"id": "e", "tool": "noop", "input": {"value": "{{params.missing}}"}},
        ],
    }
    response = await api.post("/api/v1/dags", json={"spec": spec})
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]["problems"]
    assert "node 'a': unknown tool 'no_such_tool'" in problems
    assert "node 'b' depends on unknown node 'ghost'" in problems
    assert any(p.startswith("node 'b': input['expression']") for p in problems), problems
    assert "node 'c': unknown agent 'nobody-here'" in problems
    assert any(p.startswith("cycle: ") and "c" in p and "d" in p for p in problems), problems
    assert any("params.missing" in p for p in problems), problems
    listed = await api.get("/api/v1/dags", params={"name": "bad", "limit": 500})
    assert all(d["spec"]["nodes"][0]["id"] != "a" for d in listed.json())


async def test_shape_errors_are_422_not_500(api: httpx.AsyncClient) -> None:
    both = {"name": "x", "nodes": [{"id": "a", "tool": "noop", "agent": "x", "prompt": "p"}]}
    assert (await api.post("/api/v1/dags", json={"spec": both})).status_code == 422
    assert (await api.post("/api/v1/dags", json={"spec": {"name": "x", "nodes": []}})).status_code == 422
    assert (await api.post("/api/v1/dags", json={"spec": ADD})).status_code == 422  # no name
    assert (await api.get("/api/v1/dags/0")).status_code == 422
    assert (await api.get("/api/v1/dags/999999")).status_code == 404


async def test_patch_validates_a_new_spec_and_keeps_the_old_on_failure(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, ADD)
    renamed = await api.patch(f"/api/v1/dags/{dag['id']}", json={"name": "renamed", "description": "d"})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["description"]) == ("renamed", "d")

    assert (await api.patch(f"/api/v1/dags/{dag['id']}", json={"name": None})).status_code == 422
    bad = {"name": "x", "nodes": [{"id": "a", "tool": "no_such_tool"}]}
    response = await api.patch(f"/api/v1/dags/{dag['id']}", json={"spec": bad})
    assert response.status_code == 422
    assert response.json()["detail"]["problems"] == ["node 'a': unknown tool 'no_such_tool'"]
    assert (await api.get(f"/api/v1/dags/{dag['id']}")).json()["spec"] == dag["spec"]

    good = {"name": "x", "nodes": [{"id": "only", "tool": "noop"}]}
    response = await api.patch(f"/api/v1/dags/{dag['id']}", json={"spec": good})
    assert response.status_code == 200
    assert [n["id"] for n in response.json()["spec"]["nodes"]] == ["only"]


async def test_delete_without_executions_then_404(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, ADD)
    assert (await api.delete(f"/api/v1/dags/{dag['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/dags/{dag['id']}")).status_code == 404
    assert (await api.delete(f"/api/v1/dags/{dag['id']}")).status_code == 404


async def test_execute_dag_starts_workflow_findable_by_dag_id(api: httpx.AsyncClient, client: Client) -> None:
    dag = await make_dag(api, ADD)
    response = await api.post("/api/v1/execute-dag", json={"dag_id": dag["id"], "params": {"expr": "6 * 7"}})
    assert response.status_code == 202, response.text
    started = response.json()
    execution_id = started["id"]
    assert execution_id.startswith(f"dag-{dag['id']}-")
    assert started["web_ui_url"].endswith(f"/workflows/{execution_id}")

    final = await wait_closed(api, execution_id)
    assert final["status"] == "succeeded"
    assert {n["id"]: n["output"] for n in final["nodes"]} == {"add": 42, "echo": 42}

    description = await client.get_workflow_handle(execution_id).describe()
    attributes = description.typed_search_attributes
    assert (attributes.get(DAG_ID), attributes.get(RUN_KIND)) == (str(dag["id"]), "dag")
    summary = await description.static_summary()
    assert summary is not None and dag["name"] in summary

    executions = await _eventually_listed(api, dag["id"], 1)
    assert [e["id"] for e in executions] == [execution_id]
    assert executions[0]["status"] == "succeeded"
    query = f'DagId="{dag["id"]}"'
    assert [wf.id async for wf in client.list_workflows(query)] == [execution_id]


async def test_dag_run_uses_default_params(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, ADD)
    response = await api.post("/api/v1/dag-run", json={"dag_id": dag["id"]})
    assert response.status_code == 202, response.text
    final = await wait_closed(api, response.json()["id"])
    assert {n["id"]: n["output"] for n in final["nodes"]} == {"add": 2, "echo": 2}


async def test_execute_unknown_dag_is_404_and_bad_body_422(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/execute-dag", json={"dag_id": 987654})).status_code == 404
    assert (await api.post("/api/v1/dag-run", json={"dag_id": "x"})).status_code == 422
    assert (await api.post("/api/v1/execute-dag", json={})).status_code == 422


async def test_delete_with_executions_is_409(api: httpx.AsyncClient) -> None:
    dag = await make_dag(api, ADD)
    await wait_closed(api, await start(api, dag["id"]))
    await _eventually_listed(api, dag["id"], 1)
    response = await api.delete(f"/api/v1/dags/{dag['id']}")
    assert response.status_code == 409
    assert "1 execution" in response.json()["detail"]
    assert (await api.get(f"/api/v1/dags/{dag['id']}")).status_code == 200


async def test_schedule_is_a_temporal_schedule_listed_and_removed(
    api: httpx.AsyncClient, client: Client
) -> None:
    dag = await make_dag(api, ADD, schedule="0 9 * * 1", timezone="Europe/Berlin")
    assert (dag["schedule"], dag["timezone"]) == ("0 9 * * 1", "Europe/Berlin")
    description = await client.get_schedule_handle(f"dag-{dag['id']}").describe()
    assert description.schedule.spec.time_zone_name == "Europe/Berlin"

    scheduled = await _eventually_scheduled(api, dag["id"], present=True)
    assert scheduled["cron"] == "0 9 * * 1"
    assert scheduled["workflow_type"] == "DagWorkflow"
    assert scheduled["next_runs"]

    response = await api.patch(f"/api/v1/dags/{dag['id']}", json={"schedule": "*/5 * * * *"})
    assert response.status_code == 200
    assert (await _eventually_scheduled(api, dag["id"], present=True))["cron"] == "*/5 * * * *"

    response = await api.patch(f"/api/v1/dags/{dag['id']}", json={"schedule": None})
    assert response.status_code == 200
    assert response.json()["schedule"] is None
    await _eventually_scheduled(api, dag["id"], present=False)
    listed = await api.get("/api/v1/dags", params={"scheduled": True, "name": dag["name"]})
    assert listed.json() == []


async def test_bad_cron_or_timezone_is_422(api: httpx.AsyncClient) -> None:
    for extra in ({"schedule": "every monday"}, {"schedule": "0 9 * * 1", "timezone": "Mars/Base"}):
        response = await api.post("/api/v1/dags", json={"spec": {"name": "s", **ADD}, **extra})
        assert response.status_code == 422, extra


async def _eventually_listed(api: httpx.AsyncClient, dag_id: int, count: int) -> list[dict[str, Any]]:
    """Visibility is eventually consistent; poll until `count` executions are listed."""
    for _ in range(50):
        response = await api.get(f"/api/v1/dags/{dag_id}/executions")
        assert response.status_code == 200, response.text
        if len(response.json()) >= count and all(e["status"] != "running" for e in response.json()):
            return list(response.json())
        await asyncio.sleep(0.2)
    raise AssertionError(f"DAG {dag_id}: executions not listed: {response.json()}")


async def _eventually_scheduled(api: httpx.AsyncClient, dag_id: int, *, present: bool) -> dict[str, Any]:
    for _ in range(50):
        found = {s["dag_id"]: s for s in (await api.get("/api/v1/dags/scheduled")).json()}
        if (dag_id in found) == present:
            return found.get(dag_id, {})
        await asyncio.sleep(0.2)
    raise AssertionError(f"DAG {dag_id} schedule present={not present}")
