"""PlannerWorkflow: a goal in, a validated DagSpec out (`POST /create-dag`)."""

from temporalio import workflow

from contracts.planning import PlannerInput, PlanResult
from workflows.planning import plan_goal

with workflow.unsafe.imports_passed_through():
    from activities.llm import goalflow_agent


@workflow.defn
class PlannerWorkflow:
    """Pins the planner agent, loads the catalog, and asks for a DAG until one validates."""

    __pydantic_ai_agents__ = [goalflow_agent]

    @workflow.run
    async def run(self, params: PlannerInput) -> PlanResult:
        workflow.set_current_details(f"planning with agent {params.agent}")
        result = await plan_goal(
            params.goal,
            agent=params.agent,
            context=params.context,
            max_attempts=params.max_attempts,
        )
        workflow.set_current_details(
            f"planned {len(result.spec.nodes)} node(s) in {result.attempts} attempt(s)"
        )
        return result
