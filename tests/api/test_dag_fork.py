"""`POST /dag-executions/{id}/fork`: rerun one node and its descendants with a patch, reuse every
other succeeded output, on closed and running executions; precise 422s that start nothing.

The kept history of a fork with a model override is recorded here (a DagWorkflow with reused
nodes and a per-node model): `GOALFLOW_RECORD_HISTORIES=1 pytest tests/api/test_dag_fork.py`.
"""

import asyncio
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from contracts.dag import DagSpec, RunDagInput
from contracts.search import RUN_KIND_DAG, search_attributes
from contracts.workflow_names import DAG_WORKFLOW
from core.settings import Settings
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_for, wait_node
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.workflows.replay import HISTORIES, record, replayer
from workflows.dag import DagWorkflow

RECORDED = HISTORIES / "dag_fork_model_override.json"


async def _agents(api: httpx.AsyncClient, fake: FakeOpenAI, *names: str) -> dict[str, dict[str, Any]]:
    """One agent (on a model of its own) per node name, so the fake counts each node's requests."""
    provider = await make_provider(api, fake)
    return {name: await make_agent(api, provider["id"]) for name in names}


def _chain_spec(agents: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """a -> b -> c, and d on its own."""
    d: dict[str, Any] = {"id": "d", "agent": agents["d"]["name"], "prompt": "D", **extra}
    return {
        "nodes": [
            {"id": "a", "agent": agents["a"]["name"], "prompt": "A"},
            {"id": "b", "agent": agents["b"]["name"], "prompt": "B {{nodes.a.output}}", "depends_on": ["a"]},
            {"id": "c", "agent": agents["c"]["name"], "prompt": "C {{nodes.b.output}}", "depends_on": ["b"]},
            d,
        ]
    }


def _counts(fake: FakeOpenAI, agents: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {node: len(fake.calls(agent["model"])) for node, agent in agents.items()}


def _last_prompt(fake: FakeOpenAI, model: str) -> str:
    messages = fake.calls(model)[-1]["body"]["messages"]
    return str(next(m["content"] for m in reversed(messages) if m["role"] == "user"))


async def _fork(api: httpx.AsyncClient, execution_id: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/api/v1/dag-executions/{execution_id}/fork", json=body)


async def test_fork_of_a_closed_execution_reruns_only_the_node_and_its_descendants_with_the_patch(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    agents = await _agents(api, fake_llm, "a", "b", "c", "d")
    dag = await make_dag(api, _chain_spec(agents))
    origin_id = await start(api, dag["id"])
    assert (await wait_closed(api, origin_id))["status"] == "succeeded"
    assert _counts(fake_llm, agents) == {"a": 1, "b": 1, "c": 1, "d": 1}

    response = await _fork(
        api, origin_id, {"from_node": "b", "patch": {"b": {"prompt": "B2 {{nodes.a.output}}"}}}
    )
    assert response.status_code == 201, response.text
    forked = response.json()
    assert forked["id"] != origin_id and forked["id"].startswith(f"dag-{dag['id']}-")
    assert forked["dag_id"] == dag["id"]
    assert forked["reused_nodes"] == ["a", "d"]
    body = await wait_closed(api, forked["id"])

    assert body["status"] == "succeeded", body
    states = {n["id"]: n for n in body["nodes"]}
    assert states["a"].get("reused") and states["d"].get("reused")
    assert not states["b"].get("reused") and not states["c"].get("reused")
    # a and d were not asked again; b (with the patched prompt) and c were.
    assert _counts(fake_llm, agents) == {"a": 1, "b": 2, "c": 2, "d": 1}
    assert _last_prompt(fake_llm, agents["b"]["model"]) == "B2 echo: A"
    assert states["c"]["output"] == "echo: C echo: B2 echo: A"
    # The link to the origin: the answer, the memo and the summary the Web UI shows.
    assert body["forked_from"] == origin_id and body["forked_from_node"] == "b"
    assert (await api.get(f"/api/v1/dag-executions/{origin_id}")).json()["forked_from"] is None
    description = await client.get_workflow_handle(forked["id"]).describe()
    assert await description.memo() == {"forked_from": origin_id, "forked_from_node": "b"}
    summary = await description.static_summary()
    assert summary is not None and summary.endswith(f"forked from {origin_id} at b")


async def test_fork_of_a_running_execution_reuses_finished_nodes_and_runs_unfinished_ones(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agents = await _agents(api, fake_llm, "a", "b", "c", "d")
    dag = await make_dag(api, _chain_spec(agents, requires_approval=True))
    origin_id = await start(api, dag["id"])
    await wait_node(api, origin_id, "c", "succeeded")
    running = await wait_node(api, origin_id, "d", "waiting_approval")
    assert running["status"] == "running"

    patch = {"c": {"prompt": "C2 {{nodes.b.output}}"}}
    response = await _fork(api, origin_id, {"from_node": "b", "patch": patch})
    assert response.status_code == 201, response.text
    fork_id = response.json()["id"]
    # d had not finished in the origin: the fork runs it (and asks for its approval) itself.
    assert response.json()["reused_nodes"] == ["a"]
    await wait_node(api, fork_id, "d", "waiting_approval")
    approved = await api.post(f"/api/v1/dag-executions/{fork_id}/approve", json={"node_id": "d"})
    assert approved.status_code == 200, approved.text
    body = await wait_closed(api, fork_id)

    assert body["status"] == "succeeded", body
    assert _counts(fake_llm, agents) == {"a": 1, "b": 2, "c": 2, "d": 1}
    assert _last_prompt(fake_llm, agents["c"]["model"]) == "C2 echo: B echo: A"
    assert body["forked_from"] == origin_id
    assert (await api.get(f"/api/v1/dag-executions/{origin_id}")).json()["status"] == "running"
    assert (await api.post(f"/api/v1/dag-executions/{origin_id}/cancel")).status_code == 202
    await wait_closed(api, origin_id)


async def test_fork_with_a_model_override_sends_that_model_and_temperature(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    agents = await _agents(api, fake_llm, "a", "b", "c", "d")
    dag = await make_dag(api, _chain_spec(agents))
    origin_id = await start(api, dag["id"])
    assert (await wait_closed(api, origin_id))["status"] == "succeeded"
    override = unique("fake-override")

    patch = {"c": {"model": override, "temperature": 0.9}}
    response = await _fork(api, origin_id, {"from_node": "c", "patch": patch})
    assert response.status_code == 201, response.text
    fork_id = response.json()["id"]
    assert response.json()["reused_nodes"] == ["a", "b", "d"]
    body = await wait_closed(api, fork_id)

    assert body["status"] == "succeeded", body
    [request] = fake_llm.calls(override)
    assert request["body"]["model"] == override and request["body"]["temperature"] == 0.9
    assert _counts(fake_llm, agents) == {"a": 1, "b": 1, "c": 1, "d": 1}
    # The origin's own request for c went to the agent's model at the agent's temperature.
    assert fake_llm.calls(agents["c"]["model"])[0]["body"]["temperature"] == 0.2

    history = await client.get_workflow_handle(fork_id).fetch_history()
    await replayer(DagWorkflow).replay_workflow(history)
    record(RECORDED, history)


async def test_bad_fork_requests_are_precise_422s_and_start_nothing(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    agents = await _agents(api, fake_llm, "a")
    spec = {
        "nodes": [
            {"id": "a", "agent": agents["a"]["name"], "prompt": "A"},
            {"id": "t", "tool": "noop", "input": {"value": "{{nodes.a.output}}"}, "depends_on": ["a"]},
            {"id": "u", "tool": "noop", "input": {"value": 1}},
        ]
    }
    dag = await make_dag(api, spec)
    origin_id = await start(api, dag["id"])
    assert (await wait_closed(api, origin_id))["status"] == "succeeded"
    calls_before = len(fake_llm.requests)

    bad: list[tuple[dict[str, Any], str]] = [
        ({"from_node": "zz"}, "'zz' is not in the DAG"),
        ({"from_node": "a", "patch": {"zz": {"prompt": "x"}}}, "'zz' is not in the DAG"),
        (
            {"from_node": "t", "patch": {"a": {"prompt": "x"}}},
            "node 'a' is not rerun by a fork from 't'",
        ),
        ({"from_node": "a", "patch": {"u": {"input": {"value": 2}}}}, "patched node 'u' is not rerun"),
        ({"from_node": "a", "patch": {"t": {"prompt": "x"}}}, "'t' is a tool node: 'prompt' cannot apply"),
        ({"from_node": "a", "patch": {"t": {"model": "fake-x"}}}, "'t' is a tool node: 'model' cannot apply"),
        ({"from_node": "a", "patch": {"t": {"temperature": 0.5}}}, "'temperature' cannot apply"),
        ({"from_node": "a", "patch": {"t": {"agent": agents["a"]["name"]}}}, "'agent' cannot apply"),
        ({"from_node": "a", "patch": {"a": {"input": {"value": 2}}}}, "'a' is an agent node: 'input' cannot"),
    ]
    for body, expected in bad:
        response = await _fork(api, origin_id, body)
        assert response.status_code == 422, (body, response.text)
        assert expected in response.json()["detail"], (body, response.text)
    # The patched spec is validated like any spec: every problem in one report.
    invalid_spec = [
        ({"a": {"agent": "no-such-agent"}}, "node 'a': unknown agent 'no-such-agent'"),
        ({"t": {"input": {"nonsense": 1}}}, "node 't'"),
        ({"a": {"prompt": "{{nodes.t.output}}"}}, "node 'a'"),
    ]
    for patch, expected in invalid_spec:
        response = await _fork(api, origin_id, {"from_node": "a", "patch": patch})
        assert response.status_code == 422, (patch, response.text)
        problems = response.json()["detail"]["problems"]
        assert any(expected in problem for problem in problems), (patch, problems)
    # Malformed patches never reach the service.
    for body in (
        {"from_node": "a", "patch": {"a": {"promt": "x"}}},
        {"from_node": "a", "patch": {"a": {"temperature": 5}}},
        {"from_node": "a", "patch": {"a": {"prompt": ""}}},
        {"patch": {}},
    ):
        assert (await _fork(api, origin_id, body)).status_code == 422, body

    assert len(fake_llm.requests) == calls_before
    # One good fork afterwards: once visibility lists it, it is the only execution besides the origin.
    good = await _fork(api, origin_id, {"from_node": "t"})
    assert good.status_code == 201, good.text
    await wait_closed(api, good.json()["id"])
    listed = await _executions_of(client, dag["id"], expected=2)
    assert sorted(listed) == sorted([origin_id, good.json()["id"]])


async def test_fork_of_an_unknown_execution_is_404(api: httpx.AsyncClient) -> None:
    response = await _fork(api, "dag-0-nothere", {"from_node": "a"})
    assert response.status_code == 404, response.text
    assert "dag-0-nothere" in response.json()["detail"]


async def test_model_and_temperature_belong_to_agent_nodes_only(api: httpx.AsyncClient) -> None:
    body = {"spec": {"name": unique("dag"), "nodes": [{"id": "t", "tool": "noop", "model": "fake-x"}]}}
    response = await api.post("/api/v1/dags", json=body)
    assert response.status_code == 422, response.text


async def _executions_of(client: Client, dag_id: int, *, expected: int) -> list[str]:
    """The DAG's workflow ids in visibility, once it lists `expected` of them (or fewer after a
    while: the assertion that follows then names what is missing)."""
    for _ in range(100):
        ids = [w.id async for w in client.list_workflows(f'DagId="{dag_id}"')]
        if len(ids) >= expected:
            return ids
        await asyncio.sleep(0.1)
    return ids


async def test_fork_waits_for_nothing_it_does_not_rerun(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> None:
    """A fork from a sink of a chain reruns only that sink."""
    agents = await _agents(api, fake_llm, "a", "b", "c", "d")
    dag = await make_dag(api, _chain_spec(agents))
    origin_id = await start(api, dag["id"])
    await wait_for(api, origin_id, {"succeeded"})
    response = await _fork(api, origin_id, {"from_node": "d", "patch": {"d": {"prompt": "D2"}}})
    assert response.status_code == 201, response.text
    assert response.json()["reused_nodes"] == ["a", "b", "c"]
    assert (await wait_closed(api, response.json()["id"]))["status"] == "succeeded"
    assert _counts(fake_llm, agents) == {"a": 1, "b": 1, "c": 1, "d": 2}
    assert _last_prompt(fake_llm, agents["d"]["model"]) == "D2"


async def test_a_fork_that_continues_as_new_keeps_its_origin_and_link(
    api: httpx.AsyncClient, client: Client, settings: Settings
) -> None:
    """The origin continued as new after every node (its later runs carry a trimmed spec); the
    fork runs the origin's first spec, continues as new the same way and still names its origin."""
    spec = {
        "name": unique("dag"),
        "nodes": [
            {"id": "x", "tool": "noop", "input": {"value": "X"}},
            {"id": "y", "tool": "noop", "input": {"value": "{{nodes.x.output}}"}, "depends_on": ["x"]},
            {"id": "z", "tool": "noop", "input": {"value": "{{nodes.y.output}}!"}, "depends_on": ["y"]},
        ],
    }
    dag = await make_dag(api, spec)
    origin_id = f"dag-{dag['id']}-{unique('cont')}"
    origin = await client.start_workflow(
        DAG_WORKFLOW,
        RunDagInput(dag_id=dag["id"], spec=DagSpec.model_validate(spec), nodes_per_run=1),
        id=origin_id,
        task_queue=settings.task_queue,
        search_attributes=search_attributes(dag_id=str(dag["id"]), run_kind=RUN_KIND_DAG),
    )
    # Polling while it runs is covered in tests/workflows/test_usage_marker_queries.py.
    await origin.result()

    response = await _fork(api, origin_id, {"from_node": "y", "patch": {"y": {"input": {"value": "Y2"}}}})
    assert response.status_code == 201, response.text
    assert response.json()["reused_nodes"] == ["x"]
    fork_id = response.json()["id"]
    await client.get_workflow_handle(fork_id).result()
    body = (await api.get(f"/api/v1/dag-executions/{fork_id}")).json()

    assert body["status"] == "succeeded", body
    assert {n["id"]: n["output"] for n in body["nodes"]} == {"x": "X", "y": "Y2", "z": "Y2!"}
    first_run = client.get_workflow_handle(fork_id, run_id=response.json()["run_id"])
    events = (await first_run.fetch_history()).events
    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert (body["forked_from"], body["forked_from_node"]) == (origin_id, "y")
