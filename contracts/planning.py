"""Types the planner shares with the API, the goal workflow and the catalog activity.

Pure Pydantic: safe inside the workflow sandbox.
"""

from typing import Any

from pydantic import BaseModel, Field

from contracts.agents import AgentSnapshot
from contracts.dag import DagSpec
from contracts.usage import TokenUsage

PLAN_INVALID = "PlanInvalid"
"""ApplicationError type when the planner never produced a valid DAG; its details carry a
`PlanFailure` (the last attempt and its problems)."""

DEFAULT_PLANNER = "planner"
DEFAULT_PLAN_ATTEMPTS = 3


class CatalogTool(BaseModel):
    name: str
    description: str = ""
    input_schema: dict[str, Any] = {}


class CatalogAgent(BaseModel):
    name: str
    description: str = ""


class PlanningCatalog(BaseModel):
    """What a plan may use: every registered tool with its input schema, every active agent."""

    tools: list[CatalogTool] = []
    agents: list[CatalogAgent] = []

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Tool name → JSON input schema, the shape `validate_spec` takes."""
        return {tool.name: tool.input_schema for tool in self.tools}

    def agent_names(self) -> set[str]:
        return {agent.name for agent in self.agents}


class PlannerInput(BaseModel):
    goal: str = Field(min_length=1, max_length=20_000)
    agent: str = Field(default=DEFAULT_PLANNER, min_length=1, max_length=63)
    context: str = Field(default="", max_length=100_000)
    max_attempts: int = Field(default=DEFAULT_PLAN_ATTEMPTS, ge=1, le=10)


class PlanAttempt(BaseModel):
    """One answer of the planner and what was wrong with it."""

    output: Any = None
    problems: list[str] = []


class PlanFailure(BaseModel):
    """Why planning gave up: the last attempt, its problems, and how many attempts there were."""

    goal: str
    attempts: int
    problems: list[str]
    last_attempt: Any = None
    usage: TokenUsage = TokenUsage()


class PlanResult(BaseModel):
    spec: DagSpec
    attempts: int
    usage: TokenUsage
    planner: AgentSnapshot
