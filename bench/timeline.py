"""Where a run's time went, read from its Temporal histories' event timestamps.

Per workflow task: dispatch (scheduled → started: the server's matching and the worker's poll)
and run (started → completed: workflow code on the worker, mostly CPU, plus the completion RPC).
Per activity: dispatch (scheduled → started) and execution (started → completed; for a model
request this includes the fake's fixed latency, which `own` subtracts). An eagerly dispatched
activity is started in the same instant it is scheduled.
"""

import statistics
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

MODEL_ACTIVITIES = ("model_request", "agent_request")
"""Activity types that are one model request (pydantic-ai's, or goalflow's one-activity node)."""


@dataclass
class Timeline:
    """Sums over one or more histories (milliseconds)."""

    histories: int = 0
    workflow_tasks: int = 0
    wft_dispatch_ms: float = 0.0
    wft_run_ms: float = 0.0
    activities: int = 0
    model_activities: int = 0
    local_activities: int = 0
    activity_dispatch_ms: float = 0.0
    activity_exec_ms: float = 0.0
    model_exec_ms: list[float] = field(default_factory=list)
    model_starts_ms: list[float] = field(default_factory=list)
    """Each model activity's start, relative to the first model activity's start in its history."""
    model_ends_ms: list[float] = field(default_factory=list)
    events: int = 0

    def add(self, history: WorkflowHistory) -> None:
        self.histories += 1
        self.events += len(history.events)
        wft_scheduled: dict[int, float] = {}
        wft_started: dict[int, float] = {}
        act_scheduled: dict[int, tuple[float, str]] = {}
        act_started: dict[int, float] = {}
        model_spans: list[tuple[float, float]] = []
        for event in history.events:
            at = _ms(event)
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                wft_scheduled[event.event_id] = at
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                scheduled_id = event.workflow_task_started_event_attributes.scheduled_event_id
                wft_started[event.event_id] = at
                self.workflow_tasks += 1
                self.wft_dispatch_ms += at - wft_scheduled.get(scheduled_id, at)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                started_id = event.workflow_task_completed_event_attributes.started_event_id
                self.wft_run_ms += at - wft_started.get(started_id, at)
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                act_scheduled[event.event_id] = (at, name)
                self.activities += 1
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                scheduled_id = event.activity_task_started_event_attributes.scheduled_event_id
                act_started[scheduled_id] = at
                self.activity_dispatch_ms += at - act_scheduled[scheduled_id][0]
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
                began = act_started.get(scheduled_id, at)
                self.activity_exec_ms += at - began
                if any(m in act_scheduled[scheduled_id][1] for m in MODEL_ACTIVITIES):
                    self.model_activities += 1
                    self.model_exec_ms.append(at - began)
                    model_spans.append((began, at))
            elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
                self.local_activities += 1
        if model_spans:
            first = min(start for start, _ in model_spans)
            self.model_starts_ms += [start - first for start, _ in model_spans]
            self.model_ends_ms += [end - first for _, end in model_spans]

    def per_node(self, nodes: int, latency_ms: float) -> dict[str, float]:
        """Each quantity divided by the node count (model execution: the mean minus latency)."""
        own = statistics.mean(self.model_exec_ms) - latency_ms if self.model_exec_ms else 0.0
        return {
            "workflow tasks": self.workflow_tasks / nodes,
            "activities": self.activities / nodes,
            "wft dispatch ms": self.wft_dispatch_ms / nodes,
            "wft run ms": self.wft_run_ms / nodes,
            "activity dispatch ms": self.activity_dispatch_ms / nodes,
            "model activity own ms": own,
            "history events": self.events / nodes,
        }


def _ms(event: HistoryEvent) -> float:
    return event.event_time.seconds * 1000 + event.event_time.nanos / 1e6
