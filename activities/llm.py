"""`goalflow_agent`: the agent whose loop runs in workflows, every step durable.

Under `TemporalDurability` each model request and each tool call of a run is its own activity,
so a crash repeats nothing that completed. Workflows use it for agent versions that call tools
(and for the planner, whose output is checked in the workflow); a version without tools runs as
one activity instead (`activities/agent_request.py`). Models come from `activities/llm_models.py`:
workflows pass only a model id, and credentials are loaded inside the activity.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from pydantic_ai import Agent
from pydantic_ai.agent import EventStreamHandler
from pydantic_ai.capabilities import ResolveModelId
from pydantic_ai.durable_exec.temporal import TemporalDurability
from temporalio import workflow
from temporalio.workflow import ActivityConfig

from activities.agent_options import AgentDeps
from activities.heartbeat import MODEL_HEARTBEAT_TIMEOUT
from activities.live_output import publish_text
from activities.llm_models import LLM_RETRY, LLM_TIMEOUT, MODEL_ID_PREFIX, resolve_model
from activities.loop_pause import PauseAtTurn
from activities.tools.mcp_toolset import McpToolset
from activities.tools.registry import TOOLS
from activities.tools.toolset import build_toolset

_streaming: ContextVar[bool] = ContextVar("goalflow_stream_requests", default=False)


@contextmanager
def streaming_requests() -> Iterator[None]:
    """The agent runs started inside request the model in streaming mode: each model request is
    pydantic-ai's `model_request_stream` activity, whose text `publish_text` sends out as it is
    written (only the whole response is recorded). Outside, requests are not streamed, as
    histories recorded before streaming expect."""
    token = _streaming.set(True)
    try:
        yield
    finally:
        _streaming.reset(token)


class _StreamingDurability(TemporalDurability[AgentDeps]):
    """`TemporalDurability` that streams a run's model requests only inside `streaming_requests`,
    and hands the streamed text to `publish_text` inside the request's activity.

    pydantic-ai's own switch, an `event_stream_handler`, would stream every run (a different
    activity type than kept histories hold) and also send each tool event through an activity of
    its own; this streams only the model requests, and only where the workflow asked (a patch)."""

    @property
    def has_wrap_run_event_stream(self) -> bool:
        return super().has_wrap_run_event_stream or (workflow.in_workflow() and _streaming.get())

    def _model_stream_event_handler(self) -> EventStreamHandler[AgentDeps] | None:
        return publish_text


goalflow_agent: Agent[AgentDeps, Any] = Agent(
    # Every run passes its own model id; this placeholder only satisfies Temporal's need for a
    # default and is never resolved.
    f"{MODEL_ID_PREFIX}0:unset",
    name="goalflow_agent",
    output_type=str,
    deps_type=cast(type[AgentDeps], AgentDeps),
    # The toolset id is part of the tool-call activity name: never rename it.
    toolsets=[build_toolset(TOOLS.values()), McpToolset()],
    capabilities=[
        ResolveModelId(resolve_model),
        PauseAtTurn(),
        _StreamingDurability(
            model_activity_config=ActivityConfig(
                start_to_close_timeout=LLM_TIMEOUT,
                heartbeat_timeout=MODEL_HEARTBEAT_TIMEOUT,
                retry_policy=LLM_RETRY,
            ),
        ),
    ],
)
"""The durable agent: each goalflow agent version is this agent run with its own model id,
instructions, settings, output type and allowed tools. Its name is part of activity names: never
rename it."""
