"""DagWorkflow's event stream (topic "events") and its progress line in the Web UI.

Events are appended to a Workflow Stream, which lives in workflow memory (not in history) and
is carried across continue-as-new, trimmed to the last `KEEP_ON_CONTINUE` events. The events a
trim drops are first written to the database by an activity (`archive_dag_events`), so a
subscriber that resumes from an early offset still gets every event.
"""

import base64
from datetime import timedelta

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RetryPolicy
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ActivityError

from contracts.dag import ArchiveDagEventsInput, DagEvent, DagEventKind, StoredDagEvent

with workflow.unsafe.imports_passed_through():
    from activities.dag_events import archive_dag_events

KEEP_ON_CONTINUE = 500
"""Events kept in the stream across continue-as-new; older offsets are truncated."""
ARCHIVE_CHUNK_BYTES = 256 * 1024
"""Event bytes per archive activity: each input stays far below Temporal's payload limit."""
ARCHIVE_TIMEOUT = timedelta(seconds=30)
ARCHIVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=10
)
"""A database that stays down for minutes must not hold a DAG hostage: after these attempts the
run moves on, and a subscriber is told about the missing range with an explicit `gap` event."""
_JSON = {"encoding": b"json/plain"}


class DagEvents:
    """Publishes numbered DagEvents; `seq` continues across runs."""

    def __init__(self, stream: WorkflowStream, *, seq: int) -> None:
        self._stream = stream
        self._topic = stream.topic("events", type=DagEvent)
        self.seq = seq

    def publish(
        self,
        kind: DagEventKind,
        *,
        node_id: str | None = None,
        status: str | None = None,
        message: str = "",
    ) -> None:
        self.seq += 1
        # Two events per node: built unvalidated (the arguments are typed) and encoded straight to
        # the JSON payload the converter would produce, skipping its per-value converter lookup.
        event = DagEvent.model_construct(
            seq=self.seq, kind=kind, node_id=node_id, status=status, message=message, at=workflow.now()
        )
        self._topic.publish(Payload(metadata=_JSON, data=event.__pydantic_serializer__.to_json(event)))

    def carry_cut(self) -> int:
        """The offset below which the stream is truncated at continue-as-new."""
        return max(0, self.seq - KEEP_ON_CONTINUE)

    def trim_for_carry(self) -> None:
        """Drop all but the newest events so the carried stream state stays small."""
        self._stream.truncate(self.carry_cut())

    async def archive_and_trim(self) -> None:
        """Write the events below the cut to storage, then truncate the stream there.

        The cut is fixed before the activities run: events published while they run (an
        approval, say) stay in the stream above it."""
        cut = self.carry_cut()
        state = self._stream.get_state()
        dropped: list[StoredDagEvent] = []
        for index, item in enumerate(state.log[: max(0, cut - state.base_offset)]):
            if item.topic != "events":
                continue
            payload = Payload()
            payload.ParseFromString(base64.b64decode(item.data))
            event = DagEvent.model_validate_json(payload.data)
            dropped.append(StoredDagEvent(seq=state.base_offset + index, event=event))
        workflow_id = workflow.info().workflow_id
        # One chunk after the other, oldest first: what a reader finds archived is always a
        # contiguous start of the dropped range, so a hole it sees is a real one.
        for chunk in _chunks(dropped):
            try:
                await workflow.execute_activity(
                    archive_dag_events,
                    ArchiveDagEventsInput(workflow_id=workflow_id, events=chunk),
                    start_to_close_timeout=ARCHIVE_TIMEOUT,
                    retry_policy=ARCHIVE_RETRY,
                    summary=f"archive events {chunk[0].seq}-{chunk[-1].seq}",
                )
            except ActivityError as exc:
                workflow.logger.warning("events from offset %d were not archived: %s", chunk[0].seq, exc)
                break
        self._stream.truncate(cut)


def _chunks(events: list[StoredDagEvent]) -> list[list[StoredDagEvent]]:
    """Split events into runs of at most `ARCHIVE_CHUNK_BYTES` (by their JSON size)."""
    chunks: list[list[StoredDagEvent]] = []
    current: list[StoredDagEvent] = []
    size = 0
    for item in events:
        item_size = len(item.event.message) + 200
        if current and size + item_size > ARCHIVE_CHUNK_BYTES:
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        chunks.append(current)
    return chunks


def report_progress(done: int, total: int, status: str) -> None:
    """The workflow's current details ("3/7 nodes done"); O(1), it runs on every loop turn."""
    workflow.set_current_details(f"{done}/{total} nodes done ({status})")
