"""DagWorkflow's event stream (topic "events") and its progress line in the Web UI.

Events are appended to a Workflow Stream, which lives in workflow memory (not in history) and
is carried across continue-as-new, trimmed to the last `KEEP_ON_CONTINUE` events.
"""

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.contrib.workflow_streams import WorkflowStream

from contracts.dag import DagEvent, DagEventKind

KEEP_ON_CONTINUE = 500
"""Events kept in the stream across continue-as-new; older offsets are truncated."""
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

    def trim_for_carry(self) -> None:
        """Drop all but the newest events so the carried stream state stays small."""
        self._stream.truncate(max(0, self.seq - KEEP_ON_CONTINUE))


def report_progress(done: int, total: int, status: str) -> None:
    """The workflow's current details ("3/7 nodes done"); O(1), it runs on every loop turn."""
    workflow.set_current_details(f"{done}/{total} nodes done ({status})")
