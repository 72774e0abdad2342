"""`GET /runs/{id}/events`: a goal run as one SSE stream, plan to report, resumable.

Served by a real uvicorn on loopback (tests/api/sse.py).
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from temporalio.client import Client

from core.settings import Settings
from tests.api.goal_helpers import make_goal, make_goal_agent, wait_closed
from tests.api.sse import read_events, served_api
from tests.api.test_live_output import PACE_S, WORDS, says
from tests.api.test_runs import APPROVAL_PLAN
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider


@pytest_asyncio.fixture(scope="module")
async def served(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with served_api(settings) as http:
        yield http


def _events(http: httpx.AsyncClient, run_id: str, **kwargs: Any) -> Any:
    return asyncio.wait_for(read_events(http, f"/api/v1/runs/{run_id}/events", **kwargs), 60)


def _dag_offsets(events: list[dict[str, Any]]) -> list[int]:
    """The DAG offsets the stream relayed (progress events repeat the last one: not counted)."""
    relayed = [e for e in events if e["event"] not in ("progress", "report", "end")]
    return [int(e["id"].removeprefix("dag:")) for e in relayed]


async def test_a_run_streams_plan_nodes_and_report_and_a_reconnect_misses_nothing(
    served: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(served, fake_llm, plan=APPROVAL_PLAN)
    goal = await make_goal(served, agent["name"])
    run_id = (await served.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]

    first = await _events(served, run_id, until="node_waiting_approval")
    phases = [e["data"]["phase"] for e in first if e["event"] == "progress"]
    assert phases[0] in ("starting", "planning") and phases[-1] == "running", phases
    running = next(e for e in first if e["event"] == "progress" and e["data"]["phase"] == "running")
    dag_id = running["data"]["dag_workflow_id"]
    assert dag_id.startswith(f"dag-goal{goal['id']}-")
    kinds = [e["event"] for e in first if e["event"] != "progress"]
    assert kinds[0] == "execution_started" and kinds[-1] == "node_waiting_approval"
    assert first[-1]["data"]["node_id"] == "gate"
    assert ("node_succeeded", "calc") in [(e["event"], e["data"].get("node_id")) for e in first]

    # While nobody listens, the gate is approved and the run goes on to its report.
    approved = await served.post(f"/api/v1/dag-executions/{dag_id}/approve", json={"node_id": "gate"})
    assert approved.status_code == 200, approved.text
    rest = await _events(served, run_id, last_event_id=first[-1]["id"])

    offsets = _dag_offsets(first) + _dag_offsets(rest)
    assert offsets == list(range(len(offsets))), offsets  # every DAG event once, in order
    assert [e["event"] for e in rest[-2:]] == ["report", "end"]
    report = rest[-2]["data"]
    assert report["status"] == "succeeded" and report["failure"] is None
    assert report["summary"].startswith("report:")
    assert any(name.endswith("-report.md") for name in report["artifacts"])
    later = [e["data"]["phase"] for e in rest if e["event"] == "progress"]
    assert later[-1] == "finished", later  # "summarising" too, when a poll falls within it
    assert "execution_succeeded" in [e["event"] for e in rest]

    # A closed run replays whole; a reconnect after the report has nothing left.
    replay = await _events(served, run_id)
    assert _dag_offsets(replay) == list(range(len(offsets)))
    assert replay[-2]["event"] == "report" and replay[-2]["data"] == report
    assert await _events(served, run_id, last_event_id="report") == [
        {"id": None, "event": "end", "data": {"run_id": run_id}}
    ]


async def test_a_run_failing_before_its_dag_ends_with_its_failure_and_bad_requests_are_4xx(
    served: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(served, fake_llm)
    goal = await make_goal(served, agent["name"], max_tokens_per_run=1)  # over budget right after planning
    run_id = (await served.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    await wait_closed(client, run_id)

    events = await _events(served, run_id)
    assert [e["event"] for e in events[-2:]] == ["report", "end"]
    report = events[-2]["data"]
    assert report["status"] == "failed" and report["failure"]["message"], report
    assert events[-3]["event"] == "progress" and events[-3]["data"]["phase"] == "failed"
    assert not _dag_offsets(events)

    bad = await served.get(f"/api/v1/runs/{run_id}/events", headers={"Last-Event-ID": "dag:abc"})
    assert bad.status_code == 422 and "last-event-id" in bad.text.lower()
    assert (await served.get("/api/v1/runs/goal-999999-nope/events")).status_code == 404


async def test_a_runs_stream_carries_its_agent_nodes_text_as_it_is_written(
    served: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(served, fake_llm)
    writer = await make_agent(served, provider["id"])
    text = " ".join(f"word{i}" for i in range(WORDS))
    fake_llm.handlers[writer["model"]] = says(text)
    fake_llm.paces[writer["model"]] = PACE_S
    plan = {"name": "write", "nodes": [{"id": "say", "agent": writer["name"], "prompt": "Talk."}]}
    agent = await make_goal_agent(served, fake_llm, plan=plan)
    goal = await make_goal(served, agent["name"])
    run_id = (await served.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    events = await _events(served, run_id)
    kinds = [e["event"] for e in events]
    deltas = [e for e in events if e["event"] == "node_output_delta"]
    assert len(deltas) >= 5, kinds
    assert all(e["id"] is None and e["data"]["node_id"] == "say" for e in deltas)
    assert "".join(e["data"]["text"] for e in deltas) == text
    succeeded = next(i for i, e in enumerate(events) if e["event"] == "node_succeeded")
    assert kinds.index("node_output_delta") < succeeded
    assert max(i for i, kind in enumerate(kinds) if kind == "node_output_delta") < succeeded
    assert kinds[-2:] == ["report", "end"]
