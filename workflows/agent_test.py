"""AgentTestWorkflow: one prompt through one agent version, for `POST /agents/{id}/test`."""

from temporalio import workflow
from temporalio.exceptions import FailureError

from contracts.agents import AgentTestInput, AgentTestResult
from contracts.search import RUN_KIND_AGENT_TEST
from contracts.usage import TokenUsage
from contracts.workflow_names import AGENT_TEST_WORKFLOW
from workflows.agent_runs import run_agent
from workflows.store_options import STORE_TIMEOUT
from workflows.usage import record_usage

with workflow.unsafe.imports_passed_through():
    from activities.llm import goalflow_agent
    from activities.store import load_agent_snapshot

ACTIVITY_ID_PATCH = "agent-test-activity-id"
TEST_ACTIVITY_ID = "test-1-agent-1"
"""The agent request's activity id: `<node>-<attempt>-agent-<try>`, the shape a DAG node's has."""


@workflow.defn(name=AGENT_TEST_WORKFLOW)
class AgentTestWorkflow:
    """Pins the agent version, runs the prompt, reports output, usage and timing."""

    __pydantic_ai_agents__ = [goalflow_agent]

    @workflow.run
    async def run(self, params: AgentTestInput) -> AgentTestResult:
        agent = await workflow.execute_activity(
            load_agent_snapshot,
            params.agent_id,
            start_to_close_timeout=STORE_TIMEOUT,
            summary=f"load agent {params.agent_id}",
        )
        workflow.set_current_details(f"running {agent.name} v{agent.version} on {agent.model}")
        # Since this patch the agent's request activity has an id that names it as a node
        # (contracts/agents.py `node_of_activity`), so its text is published as it is written.
        activity_id = TEST_ACTIVITY_ID if workflow.patched(ACTIVITY_ID_PATCH) else None
        try:
            result = await run_agent(agent, params.prompt, activity_id=activity_id)
        except FailureError:
            await record_usage(RUN_KIND_AGENT_TEST, "failed", TokenUsage(), agent_name=agent.name)
            raise
        await record_usage(RUN_KIND_AGENT_TEST, "succeeded", result.usage, agent_name=agent.name)
        return AgentTestResult(
            **result.model_dump(),
            agent_id=agent.id,
            agent_name=agent.name,
            agent_version=agent.version,
            model=agent.model,
        )
