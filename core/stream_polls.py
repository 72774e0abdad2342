"""Workflow Streams polls that join each other instead of piling up in the workflow.

A subscriber to a workflow stream (`temporalio.contrib.workflow_streams`) that has caught up
sends a poll, a workflow update that waits in the workflow until the next item. A subscriber that
leaves then (a closed browser tab, a client that read what it wanted) cannot take that update
back: it stays in flight until the next item, holding one of the server's in-flight update slots
for that workflow (`history.maxInFlightUpdates`, 10 by default). On an execution that waits for an
approval, ten subscribers coming and going filled them, and every later subscriber's polls were
refused and retried for seconds.

Temporal keeps one update per update id within a run and hands a repeated id the update it
already has, waiting or done. Giving each poll the id of what it asks (run, topics, offset) makes
every subscriber that asks the same thing join one update: however many leave, a workflow holds at
most one waiting poll per offset, and a later subscriber at that offset waits on it instead of
adding another. An answer it gets that is older than the stream's end is still right: the
subscriber goes on from the offset the answer ends at.
"""

from typing import Any

from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowUpdateInput,
    WorkflowUpdateHandle,
)
from temporalio.contrib.workflow_streams import PollInput

POLL_UPDATE = "__temporal_workflow_stream_poll"
"""The update a stream subscriber polls with (the library's name for it)."""


def poll_update_id(run_id: str | None, poll: PollInput) -> str:
    """One id per question: the same run, topics and offset are the same poll."""
    return f"stream-poll/{run_id or 'latest'}/{','.join(sorted(poll.topics))}/{poll.from_offset}"


class SharedStreamPolls(Interceptor):
    """A client interceptor that names stream polls by what they ask (see the module docstring)."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _NamedPolls(next)


class _NamedPolls(OutboundInterceptor):
    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> WorkflowUpdateHandle[Any]:
        if input.update == POLL_UPDATE and input.update_id is None and len(input.args) == 1:
            [poll] = input.args
            if isinstance(poll, PollInput):
                input.update_id = poll_update_id(input.run_id, poll)
        return await super().start_workflow_update(input)
