"""Planning from workflow code: a goal → a checked DagSpec (shared by PlannerWorkflow and goals).

The planner agent's loop runs in the calling workflow; each model request is an activity. Its
output is a typed DagSpec delivered through the output tool; the output function runs
`validate_spec` against the catalog and raises `ModelRetry` with every problem, so the model gets
them back and tries again. Deterministic: no I/O here, the catalog comes from an activity.
"""

import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from contracts.agents import AgentSnapshot
from contracts.dag import DagSpec
from contracts.planning import (
    DEFAULT_PLAN_ATTEMPTS,
    DEFAULT_PLANNER,
    MAX_PLAN_STEPS,
    PLAN_INVALID,
    PLAN_OUTPUT_NAME,
    PlanFailure,
    PlanningCatalog,
    PlanResult,
    PlanStyle,
    plan_output_schema,
    spec_from_plan,
)
from contracts.usage import TokenUsage
from workflows.agent_runs import provider_failure
from workflows.plan_scaffold import copied_example
from workflows.scaffold_planning import SCAFFOLD_PATCH, plan_scaffolded

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError
    from pydantic_ai import (
        ModelRetry,
        NativeOutput,
        RunContext,
        StructuredDict,
        ToolOutput,
        capture_run_messages,
    )
    from pydantic_ai.exceptions import UnexpectedModelBehavior
    from pydantic_ai.messages import (
        ModelMessage,
        ModelRequest,
        ModelResponse,
        RetryPromptPart,
        ToolCallPart,
        ToolReturnPart,
    )

    from activities.agent_options import run_options, usage_counts
    from activities.catalog import load_planning_catalog
    from activities.llm import goalflow_agent
    from activities.store import resolve_agent_snapshots

    # Pure, but it pulls in jsonschema and its compiled helpers: load them once, not per sandbox.
    from contracts.dag_validation import validate_spec

PLAN_TOOL = "submit_dag"
"""The output tool the planner calls with its DagSpec; part of the model-facing contract."""

PLANNING_RULES = """\
You turn a goal into a DAG of steps that goalflow runs durably. Answer ONLY by calling the
`submit_dag` tool with the DAG spec. Rules:
- Each node has a unique `id` (letters, digits, _ and -), and exactly one of: `tool` with an
  `input` object that matches the tool's input schema, or `agent` (an agent name below) with a
  `prompt`.
- `depends_on` lists the ids of nodes that must finish first; no cycles.
- Inputs and prompts may use templates: `{{params.<name>}}` for a DAG parameter and
  `{{nodes.<id>.output}}` for the output of a node that is an ancestor (via depends_on).
- Use only the tools and agents listed below. Keep the DAG as small as the goal allows.
- Put values the user may want to change in `params` with defaults.
"""


def planning_instructions(planner: AgentSnapshot, catalog: PlanningCatalog) -> str:
    """The planner's instructions: its own system prompt, the rules, and what it may use."""
    tools = [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in catalog.tools
    ]
    agents = [{"name": a.name, "description": a.description} for a in catalog.agents]
    parts = [
        planner.system_prompt,
        PLANNING_RULES,
        "Tools:\n" + json.dumps(tools, sort_keys=True),
        "Agents:\n" + json.dumps(agents, sort_keys=True),
    ]
    return "\n\n".join(p for p in parts if p)


def _describe_errors(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    problems = []
    for error in content:
        loc = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{loc}: {error.get('msg', '')}" if loc else str(error.get("msg", "")))
    return problems


def _last_attempt(
    messages: list[ModelMessage], problems_by_call: dict[str, list[str]]
) -> tuple[Any, list[str]]:
    """The planner's last submitted spec and what was wrong with it, from the run's messages."""
    last: ToolCallPart | None = None
    for message in messages:
        if isinstance(message, ModelResponse):
            for part in message.parts:
                if isinstance(part, ToolCallPart) and part.tool_name == PLAN_TOOL:
                    last = part
    if last is None:
        return None, ["the planner never submitted a DAG"]
    try:
        output: Any = last.args_as_dict()
    except ValueError:
        output = last.args
    if last.tool_call_id in problems_by_call:
        return output, problems_by_call[last.tool_call_id]
    for message in messages:
        if isinstance(message, ModelRequest):
            for answer in message.parts:
                if (
                    isinstance(answer, RetryPromptPart | ToolReturnPart)
                    and answer.tool_call_id == last.tool_call_id
                ):
                    return output, _describe_errors(answer.content)
    return output, ["the planner's last DAG was not accepted"]


def _spent(messages: list[ModelMessage]) -> TokenUsage:
    """What the model requests of a failed run cost (a failed plan still spent tokens)."""
    responses = [m for m in messages if isinstance(m, ModelResponse)]
    return TokenUsage(
        requests=len(responses),
        input_tokens=sum(m.usage.input_tokens for m in responses),
        output_tokens=sum(m.usage.output_tokens for m in responses),
    )


NATIVE_RULES = f"""\
You turn a goal into a short list of steps (at most {MAX_PLAN_STEPS}) that goalflow runs. Answer
with JSON only: {{"name": ..., "steps": [...]}}. Each step is either a tool call
{{"tool": <tool name>, "input": {{...}}, "after": []}} or an agent call
{{"agent": <agent name>, "prompt": <what to do>, "after": []}}. Steps are numbered from 1 in
order; "after" lists the numbers of earlier steps that must finish first. A prompt or input may
use the output of an earlier step it lists in "after" as {{{{nodes.step<number>.output}}}}.
Use only the tools and agents listed below.

Example. Goal: "Work out 17 * 23 and explain the result."
{{"name": "multiply-and-explain", "steps": [
  {{"tool": "calculator", "input": {{"expression": "17 * 23"}}, "after": []}},
  {{"agent": "summarizer", "prompt": "Explain this result in one sentence: {{{{nodes.step1.output}}}}",
   "after": [1]}}]}}
"""


def native_instructions(planner: AgentSnapshot, catalog: PlanningCatalog) -> str:
    """Short instructions for a schema-constrained planner: the schema carries tool inputs."""
    tools = "\n".join(f"- {t.name}: {t.description}" for t in catalog.tools)
    agents = "\n".join(f"- {a.name}: {a.description}" for a in catalog.agents)
    parts = [planner.system_prompt, NATIVE_RULES, "Tools:\n" + tools, "Agents:\n" + agents]
    return "\n\n".join(p for p in parts if p)


def _plan_problems(raw: Any, catalog: PlanningCatalog, goal: str) -> tuple[DagSpec | None, list[str]]:
    try:
        spec = spec_from_plan(raw if isinstance(raw, dict) else {})
    except ValidationError as exc:
        return None, _describe_errors(exc.errors())
    problems = validate_spec(spec, tool_schemas=catalog.tool_schemas(), agent_names=catalog.agent_names())
    return spec, problems + copied_example(raw, goal)


async def _plan_native(
    prompt: str,
    *,
    goal: str,
    planner: AgentSnapshot,
    catalog: PlanningCatalog,
    max_attempts: int,
    spent: TokenUsage,
) -> PlanResult:
    """Ask for a schema-constrained plan; validation problems go back as the next user message.
    `spent` is what planning used before (the scaffold's requests): the plan's usage, or its
    failure's, counts it too."""
    output = NativeOutput(StructuredDict(plan_output_schema(catalog), name=PLAN_OUTPUT_NAME))
    usage = spent
    history: list[ModelMessage] | None = None
    raw: Any = None
    problems: list[str] = []
    for attempt in range(1, max_attempts + 1):
        try:
            result = await goalflow_agent.run(
                prompt,
                message_history=history,
                model=planner.model_id,
                instructions=native_instructions(planner, catalog),
                model_settings=run_options(planner)["model_settings"],
                output_type=output,
            )
        except UnexpectedModelBehavior as exc:  # not JSON of the schema even so
            raw, problems = None, [f"the answer was not a plan: {exc.message}"]
            break
        except Exception as exc:
            typed = provider_failure(exc)
            if typed is None:
                raise
            raise typed from None
        usage = usage + TokenUsage(**usage_counts(result.usage, result.new_messages()))
        raw = result.output
        spec, problems = _plan_problems(raw, catalog, goal)
        if spec is not None and not problems:
            return PlanResult(
                spec=spec,
                attempts=attempt,
                usage=usage,
                planner=AgentSnapshot.model_validate(planner.model_dump()),
            )
        history = result.all_messages()
        prompt = "The plan is invalid; fix every problem and answer again:\n" + "\n".join(
            f"- {p}" for p in problems
        )
    failure = PlanFailure(goal=goal, attempts=max_attempts, problems=problems, last_attempt=raw, usage=usage)
    raise ApplicationError(
        f"the planner produced no valid DAG in {max_attempts} attempt(s)",
        failure.model_dump(mode="json"),
        type=PLAN_INVALID,
        non_retryable=True,
    )


async def plan_dag(
    goal: str,
    *,
    planner: AgentSnapshot,
    catalog: PlanningCatalog,
    context: str = "",
    max_attempts: int = DEFAULT_PLAN_ATTEMPTS,
) -> PlanResult:
    """Ask the planner agent for a DagSpec until one passes validation, at most `max_attempts`.

    Raises a non-retryable ApplicationError of type `PlanInvalid` whose single detail is a
    `PlanFailure` dict (last attempt + problems) when no attempt is valid.
    """
    problems_by_call: dict[str, list[str]] = {}
    attempts = 0

    def submit_dag(ctx: RunContext[Any], spec: DagSpec) -> DagSpec:
        """Submit the DAG spec that achieves the goal."""
        nonlocal attempts
        attempts += 1
        problems = validate_spec(spec, tool_schemas=catalog.tool_schemas(), agent_names=catalog.agent_names())
        if problems:
            problems_by_call[ctx.tool_call_id or ""] = problems
            raise ModelRetry(
                "The DAG is invalid; fix every problem and submit it again:\n"
                + "\n".join(f"- {p}" for p in problems)
            )
        return spec

    prompt = f"Goal:\n{goal}"
    if context:
        prompt += f"\n\nContext (a previous attempt and how it ended):\n{context}"
    if catalog.provider_kinds.get(planner.provider_id) in PlanStyle.NATIVE_KINDS:
        spent = TokenUsage()
        if not context and workflow.patched(SCAFFOLD_PATCH):
            planned, spent, problems = await plan_scaffolded(
                goal, planner=planner, catalog=catalog, max_attempts=max_attempts
            )
            if planned is not None:
                return planned
            workflow.logger.info("the scaffold made no valid plan (%s); asking for a whole one", problems)
        return await _plan_native(
            prompt, goal=goal, planner=planner, catalog=catalog, max_attempts=max_attempts, spent=spent
        )
    started = workflow.now()
    with capture_run_messages() as messages:
        try:
            result = await goalflow_agent.run(
                prompt,
                model=planner.model_id,
                instructions=planning_instructions(planner, catalog),
                model_settings=run_options(planner)["model_settings"],
                output_type=ToolOutput(submit_dag, name=PLAN_TOOL, max_retries=max_attempts - 1),
            )
        except UnexpectedModelBehavior:
            output, problems = _last_attempt(messages, problems_by_call)
            failure = PlanFailure(
                goal=goal,
                attempts=max(attempts, 1),
                problems=problems,
                last_attempt=output,
                usage=_spent(messages),
            )
            raise ApplicationError(
                f"the planner produced no valid DAG in {max_attempts} attempt(s)",
                failure.model_dump(mode="json"),
                type=PLAN_INVALID,
                non_retryable=True,
            ) from None
        except Exception as exc:
            typed = provider_failure(exc)
            if typed is None:
                raise
            raise typed from None
    workflow.logger.info("planned %d node(s) in %s", len(result.output.nodes), workflow.now() - started)
    return PlanResult(
        spec=result.output,
        attempts=attempts,
        usage=TokenUsage(**usage_counts(result.usage, result.all_messages())),
        # Activity results are host-side classes; the sandbox has its own copy of the contracts.
        planner=AgentSnapshot.model_validate(planner.model_dump()),
    )


CATALOG_TIMEOUT = timedelta(seconds=30)


async def plan_goal(
    goal: str,
    *,
    agent: str = DEFAULT_PLANNER,
    context: str = "",
    max_attempts: int = DEFAULT_PLAN_ATTEMPTS,
) -> PlanResult:
    """Pin the planner agent's active version, load the catalog, then `plan_dag`.

    For workflows that register `goalflow_agent` (`__pydantic_ai_agents__`) and whose worker
    has the `load_planning_catalog` and `resolve_agent_snapshots` activities.
    """
    snapshots = await workflow.execute_activity(
        resolve_agent_snapshots,
        [agent],
        start_to_close_timeout=CATALOG_TIMEOUT,
        summary=f"pin planner agent {agent}",
    )
    catalog = await workflow.execute_activity(
        load_planning_catalog,
        start_to_close_timeout=CATALOG_TIMEOUT,
        summary="load planning catalog",
    )
    return await plan_dag(
        goal,
        planner=snapshots[agent],
        catalog=catalog,
        context=context,
        max_attempts=max_attempts,
    )
