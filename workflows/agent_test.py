"""AgentTestWorkflow: one prompt through one agent version, for `POST /agents/{id}/test`."""

from datetime import timedelta

from temporalio import workflow

from contracts.agents import AgentTestInput, AgentTestResult
from workflows.agent_runs import run_agent

with workflow.unsafe.imports_passed_through():
    from activities.llm import goalflow_agent
    from activities.store import load_agent_snapshot


@workflow.defn
class AgentTestWorkflow:
    """Pins the agent version, runs the prompt, reports output, usage and timing."""

    __pydantic_ai_agents__ = [goalflow_agent]

    @workflow.run
    async def run(self, params: AgentTestInput) -> AgentTestResult:
        agent = await workflow.execute_activity(
            load_agent_snapshot,
            params.agent_id,
            start_to_close_timeout=timedelta(seconds=30),
            summary=f"load agent {params.agent_id}",
        )
        workflow.set_current_details(f"running {agent.name} v{agent.version} on {agent.model}")
        result = await run_agent(agent, params.prompt)
        return AgentTestResult(
            **result.model_dump(),
            agent_id=agent.id,
            agent_name=agent.name,
            agent_version=agent.version,
            model=agent.model,
        )
