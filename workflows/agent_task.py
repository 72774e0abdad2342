"""AgentTaskWorkflow: one agent on a prompt plus attached files (`POST /task`).

Text files reach the model as text parts, images as binary parts; both are read from their
artifacts by an activity, so the workflow input stays small.
"""

from temporalio import workflow
from temporalio.exceptions import FailureError

from contracts.agent_task import RUN_KIND_TASK, AgentTaskInput, AgentTaskResult, AttachmentContent
from contracts.goals import RecordUsageInput
from contracts.usage import TokenUsage
from contracts.workflow_names import AGENT_TASK_WORKFLOW
from workflows.agent_runs import run_agent
from workflows.store_options import STORE_RETRY, STORE_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from pydantic_ai import BinaryContent
    from pydantic_ai.messages import UserContent

    from activities.agent_tasks import load_task_attachments
    from activities.goals import record_run_usage
    from activities.heartbeat import STORE_HEARTBEAT_TIMEOUT
    from activities.llm import goalflow_agent
    from activities.store import resolve_agent_snapshots


def user_prompt(prompt: str, attachments: list[AttachmentContent]) -> list[UserContent]:
    """The prompt, then each text file as a labelled text part and each image as binary."""
    parts: list[UserContent] = [prompt]
    for item in attachments:
        if item.kind == "text":
            parts.append(f"--- file {item.filename} ({item.media_type}) ---\n{item.text or ''}")
        elif item.data is not None:
            parts.append(f"--- image {item.filename} ---")
            parts.append(BinaryContent(item.data, media_type=item.media_type))
    return parts


@workflow.defn(name=AGENT_TASK_WORKFLOW)
class AgentTaskWorkflow:
    """Pins the agent's active version, loads the attachments, runs the prompt."""

    __pydantic_ai_agents__ = [goalflow_agent]

    @workflow.run
    async def run(self, params: AgentTaskInput) -> AgentTaskResult:
        pinned = await workflow.execute_activity(
            resolve_agent_snapshots,
            [params.agent_name],
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"pin agent {params.agent_name}",
        )
        agent = pinned[params.agent_name]
        contents: list[AttachmentContent] = []
        if params.attachments:
            contents = await workflow.execute_activity(
                load_task_attachments,
                params.attachments,
                start_to_close_timeout=STORE_TIMEOUT,
                heartbeat_timeout=STORE_HEARTBEAT_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary=f"load {len(params.attachments)} attachment(s)",
            )
        workflow.set_current_details(f"running {agent.name} v{agent.version} on {len(contents)} file(s)")
        try:
            result = await run_agent(agent, user_prompt(params.prompt, contents))
        except FailureError:
            await self._record(agent.name, "failed", TokenUsage())
            raise
        await self._record(agent.name, "succeeded", result.usage)
        return AgentTaskResult(
            **result.model_dump(),
            agent_name=agent.name,
            agent_version=agent.version,
            model=agent.model,
            attachments=params.attachments,
        )

    async def _record(self, agent_name: str, status: str, usage: TokenUsage) -> None:
        await workflow.execute_activity(
            record_run_usage,
            RecordUsageInput(
                workflow_id=workflow.info().workflow_id,
                run_kind=RUN_KIND_TASK,
                status="succeeded" if status == "succeeded" else "failed",
                usage=usage,
                agent_name=agent_name,
            ),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"record usage ({usage.total_tokens} tokens)",
        )
