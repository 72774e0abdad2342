"""Stopping a workflow's agent loop at a turn, so the workflow can continue as new in the middle of
a long agent run (workflows/agent_runs.py resumes it in the next run).

pydantic-ai refuses capabilities added per run inside a Temporal workflow (their durable
activities must be registered when the worker starts), so `PauseAtTurn` sits on `goalflow_agent`
for every run and acts only inside a `pausing` block.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse
from temporalio import workflow

LOOP_PAUSE_PATCH = "agent-loop-continue-as-new"
"""Since this patch an agent loop stops at a turn when its workflow is due to continue as new,
and the next run resumes it."""


class LoopPaused(Exception):
    """The agent loop stopped before sending `request`; whoever paused it carries the conversation
    (`carry`, set on the way out of the run) into the next workflow run."""

    def __init__(self, request: ModelRequest) -> None:
        super().__init__("agent loop paused for continue-as-new")
        self.request = request
        self.carry: Any = None


@dataclass
class _Pause:
    due: Callable[[], bool]
    messages: list[ModelMessage]
    start: int


_pause: ContextVar[_Pause | None] = ContextVar("goalflow_loop_pause", default=None)


@contextmanager
def pausing(due: Callable[[], bool], messages: list[ModelMessage], start: int) -> Iterator[None]:
    """Inside this block the run stops before a model request once `due()` is true, if the run
    has had an answer since `messages[start]` (so every workflow run makes progress)."""
    token = _pause.set(_Pause(due, messages, start))
    try:
        yield
    finally:
        _pause.reset(token)


@dataclass
class PauseAtTurn(AbstractCapability[Any]):
    """Raises `LoopPaused` before a model request when the enclosing `pausing` block says so. The
    request not sent yet goes with it: no request or tool call is made twice."""

    async def before_node_run(self, ctx: Any, *, node: Any) -> Any:
        pause = _pause.get()
        if (
            pause is not None
            and Agent.is_model_request_node(node)
            and pause.due()
            and any(isinstance(m, ModelResponse) for m in pause.messages[pause.start :])
            and workflow.patched(LOOP_PAUSE_PATCH)
        ):
            raise LoopPaused(node.request)
        return node

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None
