"""Agent nodes on the real worker: the prompt is built from a tool node's output, the model is
the fake OpenAI-compatible server, and the node's token usage shows in the status query."""

import uuid

import httpx
from temporalio.client import Client

from contracts.dag import DagSpec, ExecutionStatus, NodeSpec, RunDagInput
from core.settings import Settings
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from workflows.dag import DagWorkflow


async def test_agent_node_prompt_uses_tool_output_and_its_usage_is_reported(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, client: Client, settings: Settings
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    fake_llm.handlers[agent["model"]] = lambda body: {"role": "assistant", "content": "three invoices"}
    dag = DagSpec(
        name="agent-node",
        params={"who": "finance"},
        nodes=[
            NodeSpec(id="fetch", tool="noop", input={"value": {"open": [101, 102, 103]}}),
            NodeSpec(
                id="sum",
                agent=agent["name"],
                prompt="For {{params.who}}, summarise: {{nodes.fetch.output.open}}",
                depends_on=["fetch"],
            ),
        ],
    )
    handle = await client.start_workflow(
        DagWorkflow.run,
        RunDagInput(spec=dag),  # agents=None: the workflow pins the active version itself
        id=f"dag-test-agent-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )
    result = await handle.result()
    status = await handle.query(DagWorkflow.status)

    [call] = fake_llm.calls(agent["model"])
    user = [m["content"] for m in call["body"]["messages"] if m["role"] == "user"]
    assert user == ["For finance, summarise: [101, 102, 103]"]
    assert result.status == ExecutionStatus.succeeded
    assert result.outputs == {"sum": "three invoices"}
    nodes = {n.id: n for n in status.nodes}
    assert nodes["sum"].usage.requests == 1
    assert (nodes["sum"].usage.input_tokens, nodes["sum"].usage.output_tokens) == (11, 7)
    assert nodes["fetch"].usage.requests == 0
    assert status.usage.total_tokens == 18
    history = await handle.fetch_history()
    ids = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    # one model request (the node's one activity), then the closing run records its usage; the
    # agent version is pinned by a local activity (a marker, not a scheduled activity)
    assert ids == ["sum-1-agent-1", "record-usage"]
