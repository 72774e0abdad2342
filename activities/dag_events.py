"""Archive DAG stream events before continue-as-new truncates them (the SSE replays them)."""

from typing import Any

from temporalio import activity

from contracts.dag import ArchiveDagEventsInput
from core.db import session_scope, upsert_insert
from core.models import DagEventRecord
from core.settings import get_settings


@activity.defn
async def archive_dag_events(data: ArchiveDagEventsInput) -> int:
    """Store the events under (workflow id, offset); rows already there are left alone, so a
    retried attempt (or a replayed workflow task) writes nothing twice. Answers the rows given."""
    if not data.events:
        return 0
    rows: list[dict[str, Any]] = [
        {"workflow_id": data.workflow_id, "seq": item.seq, "payload": item.event.model_dump(mode="json")}
        for item in data.events
    ]
    async with session_scope(get_settings()) as session:
        statement = (
            upsert_insert(session)(DagEventRecord)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["workflow_id", "seq"])
        )
        await session.exec(statement)
        await session.commit()
    return len(rows)
