"""Starting ready nodes as workflow tasks (asyncio tasks in the workflow), bounded by
`max_parallel`, and by `LOCAL_PER_TASK` local-activity nodes per workflow task.

A Temporal workflow task stays open while local activities are outstanding, and everything they
record goes back in one completion. Unbounded, a wide DAG of local nodes keeps one task open past
its timeout (and past gRPC's 4 MB message limit), then replays forever. So once a task's local
nodes have spent its budget the launcher waits for them to drain and the workflow closes the
task with a 1 ms timer (`break_due`). The budget resets when history grows, i.e. in a new task.

A break costs far more than its 1 ms: the pipeline drains and the server fires timers on a coarse
tick (about 0.3 s per break on the dev server), so the budget is sized by what it protects, the
completion's bytes (`LOCAL_TASK_BYTES`), not by a small node count. Histories recorded before the
byte budget (patch `LOCAL_TASK_BYTES_PATCH`) keep the old `LOCAL_PER_TASK` count.
"""

import asyncio
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import FailureError, is_cancelled_exception

from contracts.agents import LoopCarry
from contracts.dag import NodeSpec, NodeStatus, PausedNode
from contracts.templates import TemplateError
from workflows.dag_events import DagEvents
from workflows.dag_graph import DagGraph
from workflows.dag_nodes import NodeRunner, describe, tool_info

with workflow.unsafe.imports_passed_through():
    from activities.loop_pause import LoopPaused

LOCAL_PER_TASK = 250
"""Local-activity nodes started per workflow task before `LOCAL_TASK_BYTES_PATCH`."""
LOCAL_TASK_BYTES_PATCH = "local-task-bytes"
LOCAL_TASK_BYTES = 1024 * 1024
"""Marker bytes one task completion may carry: a quarter of gRPC's 4 MB message limit."""
MARKER_BYTES = 640
"""A local node's marker besides its result (measured ~530 bytes: ids, times, summary)."""
LOCAL_MAX_PER_TASK = 2_000
"""Local nodes per task however small their results, so a task stays well inside its timeout."""


class NodeLauncher:
    """The running nodes of one run; `wake` makes the workflow's loop look again."""

    def __init__(
        self,
        graph: DagGraph,
        runner: NodeRunner,
        events: DagEvents,
        *,
        max_parallel: int,
        wake: Callable[[], None],
    ) -> None:
        self._graph = graph
        self._runner = runner
        self._events = events
        self._max_parallel = max_parallel
        self._wake = wake
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._local_running = 0
        self._local_started = 0
        self._task_mark = -1
        self._by_bytes: bool | None = None
        self._bytes_mark = 0

    def _local_budget_left(self) -> bool:
        if self._by_bytes is None:
            self._by_bytes = workflow.patched(LOCAL_TASK_BYTES_PATCH)
        mark = workflow.info().get_current_history_length()
        if mark != self._task_mark:
            self._task_mark = mark
            self._local_started = 0
            self._bytes_mark = self._runner.local_result_bytes
        if not self._by_bytes:
            return self._local_started < LOCAL_PER_TASK
        # Nodes still running count as bare markers; their results count once they are known.
        spent = self._local_started * MARKER_BYTES + self._runner.local_result_bytes - self._bytes_mark
        return self._local_started < LOCAL_MAX_PER_TASK and spent + MARKER_BYTES <= LOCAL_TASK_BYTES

    def break_due(self) -> bool:
        """Whether the workflow should close this workflow task before launching more."""
        return bool(self._graph.ready) and self._local_running == 0 and not self._local_budget_left()

    def launch(self) -> None:
        graph = self._graph
        while graph.ready and len(self.tasks) < self._max_parallel:
            node_id = graph.ready[0]
            node = graph.specs[node_id]
            info = tool_info(node)
            local = info is not None and info.local
            if local and not self._local_budget_left():
                return
            graph.ready.popleft()
            if graph.needs_approval(node_id):
                continue
            state = graph.mark_running(node_id)
            if local:
                self._local_running += 1
                self._local_started += 1
            self.tasks[node_id] = asyncio.create_task(self._run_node(node, state.attempts, local=local))

    async def _run_node(self, node: NodeSpec, attempt: int, *, local: bool) -> None:
        # No `finally`: when the worker evicts the workflow, the coroutine is closed with
        # GeneratorExit outside the workflow event loop, where workflow.now() must not run.
        state = self._graph.nodes[node.id]
        resumed = self._graph.resumes.pop(node.id, None)
        try:
            output = await self._runner.execute(node, attempt, resume=resumed.loop if resumed else None)
        except LoopPaused as paused:
            assert isinstance(paused.carry, LoopCarry)
            self._graph.pause(
                node.id, PausedNode(loop=paused.carry, attempts=attempt, started_at=state.started_at)
            )
            self.tasks.pop(node.id, None)
            self._wake()
            return
        except asyncio.CancelledError:
            state.status = NodeStatus.cancelled
            self._node_done(node.id, local)
            raise
        except (FailureError, TemplateError, TimeoutError) as exc:
            # A cancelled activity surfaces as ActivityError(cause=CancelledError).
            state.status = NodeStatus.cancelled if is_cancelled_exception(exc) else NodeStatus.failed
            state.error = describe(exc)
        except Exception as exc:
            # Anything else (a bug, an output that does not decode) fails this node like any other
            # failure, so `on_failure` applies instead of the workflow task retrying forever.
            workflow.logger.warning("node %s raised %s", node.id, type(exc).__name__, exc_info=True)
            state.status = NodeStatus.failed
            state.error = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            state.status = NodeStatus.succeeded
            state.output = output.value
            state.artifact = output.artifact
            state.output_preview = output.preview
            state.usage = output.usage
        self._node_done(node.id, local)

    def _node_done(self, node_id: str, local: bool) -> None:
        self._graph.mark_finished(node_id)
        self.tasks.pop(node_id, None)
        if local:
            self._local_running -= 1
        self._wake()

    async def stop(self, reason: str) -> None:
        """Cancel every running node and record it cancelled."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        graph = self._graph
        while graph.finished:
            state = graph.nodes[graph.finished.popleft()]
            if state.status == NodeStatus.cancelled:
                graph.done += 1
                state.error = reason
                self._events.publish("node_cancelled", node_id=state.id, status=state.status, message=reason)
