"""Types the planner shares with the API, the goal workflow and the catalog activity.

Pure Pydantic: safe inside the workflow sandbox.
"""

import json
import re
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
    provider_kinds: dict[int, str] = {}
    """Provider id → kind, so the planner's answer style follows its provider (default: none
    known, the `submit_dag` tool as before)."""

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


MAX_PLAN_STEPS = 6
"""Native (schema-constrained) plans have at most this many steps: a small model stays small."""
STEP_PROMPT_CHARS = 600
PLAN_OUTPUT_NAME = "dag_plan"


class PlanStyle:
    """How the planner answers: `tool` (a `submit_dag` tool call with a DagSpec) or `native`
    (the provider's JSON-schema output, grammar-constrained on llama.cpp, in the step format
    below). Chosen per planner by its provider's kind, recorded in the catalog activity's result."""

    TOOL = "tool"
    NATIVE = "native"
    NATIVE_KINDS = frozenset({"local"})


def step_id(position: int) -> str:
    """Node ids are assigned by position, never written by the model: step1, step2, ..."""
    return f"step{position}"


def plan_output_schema(catalog: PlanningCatalog, *, max_steps: int = MAX_PLAN_STEPS) -> dict[str, Any]:
    """The JSON schema of a native plan, built per request from what may be used.

    Tool and agent names are enums, each tool step carries that tool's own input schema, step
    references (`after`) are positions 1..max_steps, strings have lengths, the list has bounds.
    """
    after = {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": max_steps},
        "maxItems": max_steps - 1,
    }
    choices: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "tool": {"type": "string", "enum": [tool.name]},
                "input": tool.input_schema or {"type": "object"},
                "after": after,
            },
            "required": ["tool", "input", "after"],
            "additionalProperties": False,
        }
        for tool in catalog.tools
    ]
    agent_names = sorted(catalog.agent_names())
    if agent_names:
        choices.append(
            {
                "type": "object",
                "properties": {
                    "agent": {"type": "string", "enum": agent_names},
                    "prompt": {"type": "string", "minLength": 1, "maxLength": STEP_PROMPT_CHARS},
                    "after": after,
                },
                "required": ["agent", "prompt", "after"],
                "additionalProperties": False,
            }
        )
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 60},
            "steps": {"type": "array", "items": {"anyOf": choices}, "minItems": 1, "maxItems": max_steps},
        },
        "required": ["name", "steps"],
        "additionalProperties": False,
    }


_STEP_REF = re.compile(r"\{\{\s*nodes\.step(\d+)\.")


def spec_from_plan(plan: dict[str, Any]) -> DagSpec:
    """A native plan → DagSpec: ids by position; `after` positions of earlier steps become
    `depends_on`, and an earlier step a template names is added to `depends_on` (what the
    reference already says).
    Raises pydantic's ValidationError for a shape DagSpec refuses."""
    nodes: list[dict[str, Any]] = []
    steps = plan.get("steps") or []
    for position, step in enumerate(steps, start=1):
        # Steps run in order, so `after` can only mean earlier steps: a self or forward position
        # (a tiny model writes `after: [1]` on step 1) is dropped rather than failing the plan.
        depends = [p for p in step.get("after") or [] if isinstance(p, int) and 0 < p < position]
        texts = json.dumps([step.get("input"), step.get("prompt")])
        depends += [int(m) for m in _STEP_REF.findall(texts) if 0 < int(m) < position]
        node: dict[str, Any] = {
            "id": step_id(position),
            "depends_on": [step_id(p) for p in dict.fromkeys(depends)],
        }
        if "tool" in step:
            node.update(tool=step["tool"], input=step.get("input") or {})
        else:
            node.update(agent=step.get("agent"), prompt=step.get("prompt"))
        nodes.append(node)
    return DagSpec.model_validate({"name": plan.get("name") or "plan", "nodes": nodes})
