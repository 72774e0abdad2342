"""Planning with the embedded model, step by step: the requests workflows/plan_scaffold.py's
scaffold leads to (pick a step where the goal's words pick none; fill a tool input the goal does
not state), each one schema-constrained and each one an activity like every model request.

Called by `plan_dag` (workflows/planning.py) for `local` planners; a plan it cannot make valid
falls back to asking for the whole plan at once.
"""

from typing import Any

from temporalio import workflow

from contracts.agents import AgentSnapshot
from contracts.dag import DagSpec, NodeSpec
from contracts.planning import CatalogTool, PlanningCatalog, PlanResult, step_id
from contracts.usage import TokenUsage
from workflows.agent_runs import provider_failure
from workflows.plan_scaffold import cued, plan_name, steps_for, tightened_schema

with workflow.unsafe.imports_passed_through():
    from pydantic_ai import NativeOutput, StructuredDict
    from pydantic_ai.exceptions import UnexpectedModelBehavior

    from activities.agent_options import run_options, usage_counts
    from activities.llm import goalflow_agent
    from contracts.dag_validation import validate_spec


SCAFFOLD_PATCH = "plan-scaffold"
"""Runs from before it plan with the local model the whole-plan way (`_plan_native`) only."""

CHOOSE_RULES = """\
You pick the one tool or agent that does the main work of a goal. Answer with JSON only:
{"step": <name>}. The tools and agents:"""


def _choose_instructions(catalog: PlanningCatalog, names: list[str]) -> str:
    described = {t.name: t.description for t in catalog.tools}
    described |= {a.name: a.description for a in catalog.agents}
    lines = "\n".join(f"- {name}: {described.get(name, '')}" for name in names)
    return f"{CHOOSE_RULES}\n{lines}"


def _fill_instructions(tool: CatalogTool) -> str:
    return (
        f"You fill in the input of the tool `{tool.name}` ({tool.description}) for one step of a "
        "goal. Answer with JSON only: the input object. Take every value from the goal."
    )


async def _ask_json(
    prompt: str, *, planner: AgentSnapshot, instructions: str, schema: dict[str, Any], name: str
) -> tuple[Any, TokenUsage]:
    """One schema-constrained model request (an activity, like every model request here)."""
    try:
        result = await goalflow_agent.run(
            prompt,
            model=planner.model_id,
            instructions=instructions,
            model_settings=run_options(planner)["model_settings"],
            output_type=NativeOutput(StructuredDict(schema, name=name)),
        )
    except UnexpectedModelBehavior:
        return None, TokenUsage()
    except Exception as exc:
        typed = provider_failure(exc)
        if typed is None:
            raise
        raise typed from None
    return result.output, TokenUsage(**usage_counts(result.usage, result.new_messages()))


async def _fill(
    goal: str, tool: CatalogTool, *, planner: AgentSnapshot, catalog: PlanningCatalog, max_attempts: int
) -> tuple[dict[str, Any] | None, TokenUsage]:
    """A tool input the model writes against that tool's own (tightened) schema, checked like a
    plan and asked again with the problems, at most `max_attempts` times."""
    usage = TokenUsage()
    prompt = f"Goal:\n{goal}"
    for _ in range(max_attempts):
        answer, spent = await _ask_json(
            prompt,
            planner=planner,
            instructions=_fill_instructions(tool),
            schema=tightened_schema(tool),
            name=f"{tool.name}_input",
        )
        usage = usage + spent
        if not isinstance(answer, dict):
            continue
        probe = DagSpec(name="fill", nodes=[NodeSpec(id="step1", tool=tool.name, input=answer)])
        problems = validate_spec(
            probe, tool_schemas=catalog.tool_schemas(), agent_names=catalog.agent_names()
        )
        if not problems:
            return answer, usage
        prompt = f"Goal:\n{goal}\n\nThat input was wrong:\n" + "\n".join(f"- {p}" for p in problems)
    return None, usage


async def plan_scaffolded(
    goal: str, *, planner: AgentSnapshot, catalog: PlanningCatalog, max_attempts: int
) -> tuple[PlanResult | None, TokenUsage, list[str]]:
    """A plan built step by step (workflows/plan_scaffold.py); None with the reason when the
    scaffold cannot make a valid one, and the caller asks for a whole plan instead."""
    usage = TokenUsage()
    names = cued(goal, catalog)
    if not names:
        choices = sorted(
            [t.name for t in catalog.tools if t.name not in UNCHOSEN_TOOLS]
            + [a for a in catalog.agent_names() if a != planner.name]
        )
        schema = {
            "type": "object",
            "properties": {"step": {"type": "string", "enum": choices}},
            "required": ["step"],
            "additionalProperties": False,
        }
        instructions = _choose_instructions(catalog, choices)
        answer, usage = await _ask_json(
            f"Goal:\n{goal}", planner=planner, instructions=instructions, schema=schema, name="step"
        )
        if not isinstance(answer, dict) or answer.get("step") not in choices:
            return None, usage, ["the model chose no step"]
        names = [answer["step"]]
    nodes: list[NodeSpec] = []
    tools = {t.name: t for t in catalog.tools}
    for number, step in enumerate(steps_for(goal, names, catalog, agent=planner.name), start=1):
        after = [step_id(number - 1)] if number > 1 else []
        if step.kind == "agent":
            nodes.append(NodeSpec(id=step_id(number), agent=step.name, prompt=step.prompt, depends_on=after))
            continue
        tool_input = step.input
        if tool_input is None:
            tool_input, spent = await _fill(
                goal, tools[step.name], planner=planner, catalog=catalog, max_attempts=max_attempts
            )
            usage = usage + spent
            if tool_input is None:
                return None, usage, [f"no valid input for {step.name}"]
        nodes.append(NodeSpec(id=step_id(number), tool=step.name, input=tool_input, depends_on=after))
    spec = DagSpec(name=plan_name(goal), nodes=nodes)
    problems = validate_spec(spec, tool_schemas=catalog.tool_schemas(), agent_names=catalog.agent_names())
    if problems:
        return None, usage, problems
    planned = PlanResult(
        spec=spec, attempts=1, usage=usage, planner=AgentSnapshot.model_validate(planner.model_dump())
    )
    return planned, usage, []


UNCHOSEN_TOOLS = frozenset({"noop", "run_agent"})
"""Tools the scaffold never offers as a goal's main step: `noop` does nothing and `run_agent`
is an agent step in disguise (the agents are offered themselves)."""
