"""Every event stays reachable across continue-as-new: the stream keeps only the newest 500
events, the older ones are archived first and `GET /dag-executions/{id}/events` replays them;
what is truly gone comes as an explicit `gap` event."""

import json
from typing import Any

import httpx
from sqlmodel import col, delete, func, select
from temporalio.client import Client

from core.db import session_scope
from core.models import DagEventRecord
from core.settings import Settings
from tests.api.dag_direct import chain, start_direct
from tests.api.dag_helpers import make_dag, wait_closed


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of a finished SSE body, as {id, event, data}."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if fields:
            data = json.loads(fields["data"]) if "data" in fields else None
            events.append({"id": fields.get("id"), "event": fields.get("event"), "data": data})
    return events


async def _archived(settings: Settings, workflow_id: str) -> int:
    async with session_scope(settings) as session:
        query = (
            select(func.count()).select_from(DagEventRecord).where(DagEventRecord.workflow_id == workflow_id)
        )
        return int((await session.exec(query)).one())


async def _read(api: httpx.AsyncClient, execution_id: str, last_event_id: str) -> list[dict[str, Any]]:
    response = await api.get(
        f"/api/v1/dag-executions/{execution_id}/events", headers={"Last-Event-ID": last_event_id}
    )
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    assert events[-1] == {"id": None, "event": "end", "data": {"execution_id": execution_id}}
    return events[:-1]


async def test_sse_from_an_early_last_event_id_after_continue_as_new_has_no_silent_gap(
    api: httpx.AsyncClient, client: Client, settings: Settings
) -> None:
    # 600 nodes, 200 per run: two continue-as-new, ~1,200 events, the second trim drops ~300.
    dag = await make_dag(api, chain(600))
    execution_id = await start_direct(client, settings, dag, nodes_per_run=200)
    assert (await wait_closed(api, execution_id))["status"] == "succeeded"
    archived = await _archived(settings, execution_id)
    assert archived > 0, "the stream was never trimmed: the test would prove nothing"

    events = await _read(api, execution_id, "5")
    ids = [int(e["id"]) for e in events]
    assert "gap" not in {e["event"] for e in events}
    assert ids == list(range(6, 6 + len(ids))), "ids must be gap-free and in order"
    assert [e["data"]["seq"] for e in events] == [i + 1 for i in ids]
    assert [e["event"] for e in events].count("continued_as_new") == 2
    assert events[-1]["event"] == "execution_succeeded"
    succeeded = {e["data"]["node_id"] for e in events if e["event"] == "node_succeeded"}
    assert succeeded >= {f"n{i}" for i in range(3, 600)}

    # Events recorded before the archive existed are gone: one explicit gap names them.
    async with session_scope(settings) as session:
        await session.exec(
            delete(DagEventRecord).where(
                col(DagEventRecord.workflow_id) == execution_id, col(DagEventRecord.seq) < 100
            )
        )
        await session.commit()
    again = await _read(api, execution_id, "5")
    assert again[0]["event"] == "gap"
    assert again[0]["data"]["first"] == 6 and again[0]["data"]["last"] == 99
    assert again[0]["id"] == "99"
    assert [int(e["id"]) for e in again[1:]] == list(range(100, ids[-1] + 1))

    # Deleting the execution deletes its archived events.
    assert (await api.delete(f"/api/v1/dag-executions/{execution_id}")).status_code == 204
    assert await _archived(settings, execution_id) == 0
