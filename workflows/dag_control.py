"""What people do to a running DagWorkflow: approve or reject a waiting node, resume a suspended
execution. The workflow's update, validator and signal handlers delegate here."""

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from contracts import errors
from contracts.dag import ApprovalDecision, NodeStatus, ResumeRequest
from workflows.dag_events import DagEvents
from workflows.dag_graph import DagGraph


class DagControl:
    """Approvals and resumes over a DagGraph; `wake` makes the workflow's loop look again."""

    def __init__(self, graph: DagGraph, events: DagEvents, *, wake: Callable[[], None]) -> None:
        self._graph = graph
        self._events = events
        self._wake = wake

    def check_waiting(self, decision: ApprovalDecision) -> None:
        state = self._graph.nodes.get(decision.node_id)
        if state is None:
            raise ApplicationError(f"unknown node {decision.node_id!r}", type=errors.UNKNOWN_NODE)
        if state.status != NodeStatus.waiting_approval:
            raise ApplicationError(
                f"node {decision.node_id!r} is not waiting for approval (it is {state.status})",
                type=errors.NODE_NOT_WAITING,
            )

    def signal_valid(self, decision: ApprovalDecision, signal: str) -> bool:
        """Signals cannot answer: an invalid one is logged and ignored."""
        try:
            self.check_waiting(decision)
        except ApplicationError as exc:
            workflow.logger.warning("%s ignored: %s", signal, exc.message)
            return False
        return True

    def approve(self, decision: ApprovalDecision) -> None:
        graph = self._graph
        node_id = decision.node_id
        graph.waiting_approval.discard(node_id)
        graph.approved.add(node_id)
        state = graph.nodes[node_id]
        state.status = NodeStatus.pending
        state.waiting_reason = None
        graph.ready.appendleft(node_id)
        self._events.publish("node_approved", node_id=node_id, status=state.status, message=decision.comment)
        self._wake()

    def reject(self, decision: ApprovalDecision) -> None:
        graph = self._graph
        node_id = decision.node_id
        graph.waiting_approval.discard(node_id)
        state = graph.nodes[node_id]
        state.status = NodeStatus.failed
        state.waiting_reason = None
        state.error = f"rejected: {decision.comment}" if decision.comment else "rejected"
        self._events.publish("node_rejected", node_id=node_id, status=state.status, message=decision.comment)
        graph.mark_finished(node_id)
        self._wake()

    def check_resume(self, request: ResumeRequest) -> None:
        graph = self._graph
        if request.node_id not in graph.nodes:
            raise ApplicationError(f"unknown node {request.node_id!r}", type=errors.UNKNOWN_NODE)
        waiting = graph.awaiting_resume
        if not waiting or waiting[0] != request.node_id:
            where = f"on node {waiting[0]!r}" if waiting else "at all"
            raise ApplicationError(
                f"execution is not suspended on node {request.node_id!r} (suspended {where})",
                type=errors.NOT_SUSPENDED_ON_NODE,
            )
        if request.action == "patch":
            node = graph.specs[request.node_id]
            prompt = (request.input or {}).get("prompt")
            if node.agent is not None and not (isinstance(prompt, str) and prompt):
                raise ApplicationError(
                    "patching an agent node needs input {'prompt': '<non-empty text>'}",
                    type=errors.INVALID_PATCH,
                )

    def resume(self, request: ResumeRequest) -> bool:
        """Apply a validated resume; True when no failed node waits any more."""
        graph = self._graph
        node_id = request.node_id
        graph.awaiting_resume.remove(node_id)
        graph.done -= 1  # the failed node is open again
        if request.action == "skip":
            graph.skip(node_id, "skipped on resume")
            graph.skip_dependents(node_id)
        else:
            node = graph.specs[node_id]
            if request.action == "patch" and request.input is not None:
                if node.tool is not None:
                    graph.specs[node_id] = node.model_copy(update={"input": request.input})
                else:
                    graph.specs[node_id] = node.model_copy(update={"prompt": request.input["prompt"]})
            state = graph.nodes[node_id]
            state.status = NodeStatus.pending
            state.error = None
            graph.approved.discard(node_id)
            graph.ready.appendleft(node_id)
        self._wake()
        return not graph.awaiting_resume
