"""PlannerWorkflow: a goal in, a validated DagSpec out (`POST /create-dag`)."""

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

from contracts.planning import PLAN_INVALID, PlanFailure, PlannerInput, PlanResult
from contracts.search import RUN_KIND_PLANNER
from contracts.usage import TokenUsage
from contracts.workflow_names import PLANNER_WORKFLOW
from workflows.planning import plan_goal
from workflows.scaffold_planning import SCAFFOLD_PATCH
from workflows.usage import record_usage

with workflow.unsafe.imports_passed_through():
    from activities.llm import goalflow_agent


@workflow.defn(name=PLANNER_WORKFLOW)
class PlannerWorkflow:
    """Pins the planner agent, loads the catalog, and asks for a DAG until one validates."""

    __pydantic_ai_agents__ = [goalflow_agent]

    @workflow.run
    async def run(self, params: PlannerInput) -> PlanResult:
        workflow.patched(SCAFFOLD_PATCH)  # decided before any activity, as GoalWorkflow does
        workflow.set_current_details(f"planning with agent {params.agent}")
        try:
            result = await plan_goal(
                params.goal,
                agent=params.agent,
                context=params.context,
                max_attempts=params.max_attempts,
            )
        except FailureError as exc:
            usage = TokenUsage()  # a provider failure: whatever was spent is not reported back
            if isinstance(exc, ApplicationError) and exc.type == PLAN_INVALID and exc.details:
                usage = PlanFailure.model_validate(exc.details[0]).usage
            await record_usage(RUN_KIND_PLANNER, "failed", usage, agent_name=params.agent)
            raise
        await record_usage(RUN_KIND_PLANNER, "succeeded", result.usage, agent_name=params.agent)
        workflow.set_current_details(
            f"planned {len(result.spec.nodes)} node(s) in {result.attempts} attempt(s)"
        )
        return result
