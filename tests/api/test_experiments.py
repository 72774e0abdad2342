"""`POST /dag-experiments`: one DAG across a model matrix, compared in one table."""

import httpx
from temporalio.client import Client

from contracts.search import DAG_ID, RUN_KIND
from tests.api.dag_helpers import make_dag
from tests.conftest import unique
from tests.fakes.openai_server import Fail, FakeOpenAI
from tests.helpers import make_agent, make_provider


async def test_experiment_runs_each_cell_on_its_model_and_compares(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client
) -> None:
    provider = await make_provider(api, fake_llm)
    writer = await make_agent(api, provider["id"])
    spec = {
        "params": {"word": "hi"},
        "nodes": [
            {"id": "count", "tool": "calculator", "input": {"expression": "1+1"}},
            {
                "id": "say",
                "agent": writer["name"],
                "prompt": "say {{params.word}} {{nodes.count.output}}",
                "depends_on": ["count"],
            },
        ],
    }
    dag = await make_dag(api, spec)
    small, large, broken = unique("fake-small"), unique("fake-large"), unique("fake-broken")
    fake_llm.script(broken, Fail(400, "model refuses"))

    response = await api.post(
        "/api/v1/dag-experiments",
        json={
            "dag_id": dag["id"],
            "params": {"word": "yo"},
            "matrix": [
                {"provider_id": provider["id"], "model": small},
                {"provider_id": provider["id"], "model": large, "temperature": 1.5},
                {"provider_id": provider["id"], "model": broken},
            ],
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith(f"dag-{dag['id']}-exp-")
    ok_small, ok_large, failed = body["cells"]
    for cell in (ok_small, ok_large):
        assert cell["status"] == "succeeded"
        assert cell["outputs"] == {"say": "echo: say yo 2"}
        assert cell["usage"] == {"requests": 1, "input_tokens": 11, "output_tokens": 7}
        assert cell["total_tokens"] == 18
        assert cell["duration_ms"] >= 0
    assert (ok_small["cell"]["model"], ok_large["cell"]["model"]) == (small, large)
    assert failed["status"] == "failed"
    assert "model refuses" in failed["error"]
    assert failed["outputs"] == {}

    # Each cell really ran on its own model, with the cell's temperature over the agent's.
    [small_call] = fake_llm.calls(small)
    [large_call] = fake_llm.calls(large)
    assert small_call["body"]["temperature"] == 0.2
    assert large_call["body"]["temperature"] == 1.5
    assert fake_llm.calls(writer["model"]) == []

    # Cells are ordinary DAG executions (children of the experiment), inspectable by id.
    child = await api.get(f"/api/v1/dag-executions/{ok_large['execution_id']}")
    assert child.status_code == 200
    assert child.json()["status"] == "succeeded"
    parent = await client.get_workflow_handle(body["id"]).describe()
    assert parent.typed_search_attributes.get(DAG_ID) == str(dag["id"])
    assert parent.typed_search_attributes.get(RUN_KIND) == "dag-experiment"


async def test_experiment_rejects_unknown_dag_provider_and_empty_matrix(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    dag = await make_dag(api, {"nodes": [{"id": "x", "tool": "noop"}]})
    cell = {"provider_id": provider["id"], "model": "fake-x"}
    missing = await api.post("/api/v1/dag-experiments", json={"dag_id": 987654, "matrix": [cell]})
    assert missing.status_code == 404
    empty = await api.post("/api/v1/dag-experiments", json={"dag_id": dag["id"], "matrix": []})
    assert empty.status_code == 422
    ghost = {"provider_id": 987654, "model": "fake-x"}
    bad = await api.post("/api/v1/dag-experiments", json={"dag_id": dag["id"], "matrix": [ghost]})
    assert bad.status_code == 422
    assert "987654" in bad.json()["detail"]
