"""Stand-in tool activities for DagWorkflow tests, registered under the real tool names, plus a
worker builder on a fresh task queue. Calls are counted per `key` in the input."""

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.dag import load_artifact_text, offload_output
from activities.dag_final_state import save_final_state
from activities.store import resolve_agent_snapshots
from contracts.dag import ArchiveDagEventsInput, DagEvent, DagSpec, DagStatus, NodeSpec, RunDagInput
from contracts.goals import RecordUsageInput
from contracts.tools import ToolResult
from contracts.usage import TokenUsage
from worker import WORKFLOW_RUNNER
from workflows.dag import DagWorkflow

CALLS: Counter[str] = Counter()
GATES: dict[str, asyncio.Event] = {}
STARTED: dict[str, asyncio.Event] = {}
ARCHIVED: dict[str, dict[int, DagEvent]] = {}
"""Events the stand-in archive activity kept: workflow id -> stream offset -> event."""
USAGE: dict[str, RecordUsageInput] = {}
"""What the stand-in usage ledger got: workflow id -> the run's usage record."""


@activity.defn(name="archive_dag_events")
async def fake_archive_dag_events(data: ArchiveDagEventsInput) -> int:
    """The archive activity without a database (these tests have none)."""
    kept = ARCHIVED.setdefault(data.workflow_id, {})
    for item in data.events:
        kept.setdefault(item.seq, item.event)
    return len(data.events)


@activity.defn(name="record_run_usage")
async def fake_record_run_usage(params: RecordUsageInput) -> None:
    """The usage ledger without a database: a top-level DagWorkflow writes it as it closes."""
    USAGE[params.workflow_id] = params


def gate(key: str) -> tuple[asyncio.Event, asyncio.Event]:
    """(started, release) events for a `blocker` node with this key."""
    STARTED[key] = asyncio.Event()
    GATES[key] = asyncio.Event()
    return STARTED[key], GATES[key]


@activity.defn(name="noop")
async def fake_noop(args: dict[str, Any]) -> ToolResult:
    CALLS[args.get("key", "noop")] += 1
    return ToolResult(output=args.get("value"))


@activity.defn(name="echo")
async def fake_echo(args: dict[str, Any]) -> ToolResult:
    """Returns its input; `tokens` adds token usage, `big` returns a large output."""
    CALLS[args.get("key", "echo")] += 1
    output: Any = args
    if args.get("big"):
        output = {"blob": "x" * args["big"]}
    tokens = int(args.get("tokens", 0))
    return ToolResult(output=output, usage=TokenUsage(requests=1 if tokens else 0, input_tokens=tokens))


@activity.defn(name="slow")
async def fake_slow(args: dict[str, Any]) -> ToolResult:
    CALLS[args.get("key", "slow")] += 1
    await asyncio.sleep(float(args.get("seconds", 0.5)))
    return ToolResult(output="slept")


@activity.defn(name="flaky")
async def fake_flaky(args: dict[str, Any]) -> ToolResult:
    """Fails its first `fail_times` calls (per key), then succeeds."""
    key = args.get("key", "flaky")
    CALLS[key] += 1
    if CALLS[key] <= int(args.get("fail_times", 1)):
        raise ApplicationError(f"flaky failure {CALLS[key]}", type="Flaky")
    return ToolResult(output={"attempt": CALLS[key]})


@activity.defn(name="blocker")
async def fake_blocker(args: dict[str, Any]) -> ToolResult:
    """Waits until the test releases its gate (cancellable, like a real long activity)."""
    key = args["key"]
    CALLS[key] += 1
    STARTED[key].set()
    await GATES[key].wait()
    return ToolResult(output="released")


FAKE_TOOLS: list[Callable[..., Any]] = [fake_noop, fake_echo, fake_slow, fake_flaky, fake_blocker]
TOOL_SCHEMAS: dict[str, dict[str, Any]] = {
    "noop": {"type": "object"},
    "echo": {"type": "object"},
    "slow": {"type": "object", "properties": {"seconds": {"type": "number"}}},
    "flaky": {"type": "object"},
    "blocker": {"type": "object", "required": ["key"]},
}


def make_worker(client: Client, task_queue: str, **kwargs: Any) -> Worker:
    """DagWorkflow with the fake tools and its own activities on `task_queue`, sandboxed as the
    real worker runs it (`contracts` passed through: re-importing it costs seconds per run)."""
    kwargs.setdefault("workflow_runner", WORKFLOW_RUNNER)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DagWorkflow],
        activities=[
            *FAKE_TOOLS,
            offload_output,
            load_artifact_text,
            resolve_agent_snapshots,
            save_final_state,
            fake_archive_dag_events,
            fake_record_run_usage,
        ],
        max_concurrent_activities=300,
        **kwargs,
    )


def node(node_id: str, tool: str = "noop", **fields: Any) -> NodeSpec:
    return NodeSpec(id=node_id, tool=tool, **fields)


def spec(*nodes: NodeSpec, **fields: Any) -> DagSpec:
    return DagSpec(name=fields.pop("name", "test"), nodes=list(nodes), **fields)


async def start(
    client: Client, task_queue: str, dag: DagSpec, **fields: Any
) -> WorkflowHandle[DagWorkflow, Any]:
    return await client.start_workflow(
        DagWorkflow.run,
        RunDagInput(dag_id=None, spec=dag, agents={}, **fields),
        id=f"dag-test-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        execution_timeout=timedelta(minutes=5),
    )


def new_queue() -> str:
    return f"dag-{uuid.uuid4().hex[:8]}"


async def until(handle: WorkflowHandle[Any, Any], check: Callable[[DagStatus], bool]) -> DagStatus:
    """Poll the status query until `check` holds (bounded, so a broken feature fails the test)."""
    status = None
    for _ in range(600):
        status = await handle.query(DagWorkflow.status)
        if check(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition never met; last status {status}")
