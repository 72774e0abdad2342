"""`goalflow_agent`: the agent whose loop runs in workflows, every step durable.

Under `TemporalDurability` each model request and each tool call of a run is its own activity,
so a crash repeats nothing that completed. Workflows use it for agent versions that call tools
(and for the planner, whose output is checked in the workflow); a version without tools runs as
one activity instead (`activities/agent_request.py`). Models come from `activities/llm_models.py`:
workflows pass only a model id, and credentials are loaded inside the activity.
"""

from typing import Any, cast

from pydantic_ai import Agent
from pydantic_ai.capabilities import ResolveModelId
from pydantic_ai.durable_exec.temporal import TemporalDurability
from temporalio.workflow import ActivityConfig

from activities.agent_options import AgentDeps
from activities.heartbeat import MODEL_HEARTBEAT_TIMEOUT
from activities.llm_models import LLM_RETRY, LLM_TIMEOUT, MODEL_ID_PREFIX, resolve_model
from activities.loop_pause import PauseAtTurn
from activities.tools.mcp_toolset import McpToolset
from activities.tools.registry import TOOLS
from activities.tools.toolset import build_toolset

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
        TemporalDurability(
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
