"""Built-in tools as Temporal activities: happy paths, typed refusals, artifacts by reference,
memories, and a bad input that fails once through the real server instead of retrying."""

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.tools.registry import TOOL_ACTIVITIES, TOOLS
from contracts.tool_inputs import TOOL_INPUTS, tool_schemas
from contracts.tools import ARTIFACT_REF_PREFIX, BUILTIN_TOOLS, OUTPUT_INLINE_LIMIT, PREVIEW_CHARS, ToolResult
from core.db import session_scope
from core.settings import Settings
from storage import artifacts as artifact_store
from tests.conftest import unique


def env(workflow_id: str | None = None) -> ActivityEnvironment:
    """An activity context with its own workflow id, so artifact names never collide."""
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, workflow_id=workflow_id or unique("wf"), activity_id="node-1"
    )
    return environment


async def run(tool: str, args: dict[str, Any], *, workflow_id: str | None = None) -> ToolResult:
    result = await env(workflow_id).run(TOOLS[tool].activity, args)
    assert isinstance(result, ToolResult)
    return result


async def refused(tool: str, args: dict[str, Any]) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run(tool, args)
    return caught.value


def test_registry_holds_every_builtin_with_activity_named_after_it() -> None:
    assert set(TOOLS) == set(BUILTIN_TOOLS)
    for name, spec in TOOLS.items():
        assert spec.activity.__temporal_activity_definition.name == name  # type: ignore[attr-defined]
        assert spec.info == BUILTIN_TOOLS[name]
        assert spec.input_model is TOOL_INPUTS[name]  # the schema services validate specs against
    assert set(TOOL_INPUTS) == set(TOOLS)
    schemas = tool_schemas()
    assert schemas["calculator"]["required"] == ["expression"]
    assert schemas["calculator"]["additionalProperties"] is False
    assert len(TOOL_ACTIVITIES) == len(TOOLS)


async def test_noop_echoes_any_value(settings: Settings) -> None:
    value = {"a": [1, 2.5, None, "x"], "b": {"c": True}}
    result = await run("noop", {"value": value})
    assert result.output == value
    assert result.artifact is None
    assert result.size_bytes == len('{"a":[1,2.5,null,"x"],"b":{"c":true}}')


async def test_unknown_field_is_a_final_typed_input_error(settings: Settings) -> None:
    error = await refused("noop", {"value": 1, "valeu": 2})
    assert error.type == "ToolInputInvalid"
    assert error.non_retryable
    assert "valeu" in error.message


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("6*7", 42), ("(2 + 3) * 4 / 8", 2.5), ("2 ** 10 - 1", 1023), ("-sqrt(16) + abs(-2)", -2.0)],
)
async def test_calculator_evaluates_arithmetic(settings: Settings, expression: str, expected: float) -> None:
    assert (await run("calculator", {"expression": expression})).output == expected


@pytest.mark.parametrize(
    "expression",
    [
        "9**9**9",
        "10**100000",
        "2**5000",
        "__import__('os').system('true')",
        "(1).__class__",
        "[1] * 10",
        "1/0",
        "x + 1",
        "1 +",
        "(-8) ** 0.5",
    ],
)
async def test_calculator_refuses_unsafe_or_unbounded_expressions(
    settings: Settings, expression: str
) -> None:
    error = await refused("calculator", {"expression": expression})
    assert error.type == "CalculatorRejected"
    assert error.non_retryable


async def test_calculator_without_expression_is_input_error(settings: Settings) -> None:
    error = await refused("calculator", {})
    assert error.type == "ToolInputInvalid"
    assert "expression" in error.message


async def test_current_time_in_an_iana_zone(settings: Settings) -> None:
    output = (await run("current_time", {"timezone": "Asia/Kolkata"})).output
    assert output["timezone"] == "Asia/Kolkata"
    assert output["utc_offset"] == "+0530"
    parsed = datetime.fromisoformat(output["iso"])
    assert parsed.utcoffset() == timedelta(hours=5, minutes=30)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime"])
async def test_current_time_refuses_unknown_zones(settings: Settings, zone: str) -> None:
    error = await refused("current_time", {"timezone": zone})
    assert error.type == "TimezoneInvalid"
    assert error.non_retryable


async def test_write_then_read_artifact(settings: Settings) -> None:
    name = f"{unique('report')}.md"
    written = (await run("write_artifact", {"name": name, "content": "# Hi\n"})).output
    assert written["size_bytes"] == 5
    assert written["content_type"].startswith("text/markdown")
    assert (settings.artifacts_dir / name).read_text() == "# Hi\n"
    assert (await run("read_artifact", {"name": name})).output == "# Hi\n"


@pytest.mark.parametrize(
    "name",
    [
        "../escape.txt",
        "..",
        "/etc/passwd",
        "a/b.txt",
        "a\\b.txt",
        "nul\x00.txt",
        "%2e%2e%2fescape.txt",
        "%252e%252e%252fescape.txt",
        "..%5cescape.txt",
        ".hidden",
    ],
)
async def test_artifact_names_that_could_escape_are_refused(settings: Settings, name: str) -> None:
    error = await refused("write_artifact", {"name": name, "content": "x"})
    assert error.type == "ArtifactNameInvalid"
    assert error.non_retryable
    assert not (settings.artifacts_dir.parent / "escape.txt").exists()


async def test_reading_unknown_artifact_is_typed_not_found(settings: Settings) -> None:
    error = await refused("read_artifact", {"name": f"{unique('missing')}.txt"})
    assert error.type == "ArtifactNotFound"
    assert error.non_retryable


async def test_large_output_goes_to_artifact_and_later_tool_reads_it_by_reference(
    settings: Settings,
) -> None:
    big = "line of text\n" * 2000
    assert len(big) > OUTPUT_INLINE_LIMIT
    workflow_id = unique("dag-7")
    result = await run("noop", {"value": big}, workflow_id=workflow_id)
    assert result.output is None
    assert result.artifact is not None
    assert result.artifact.startswith(workflow_id)
    assert "node-1" in result.artifact
    assert result.preview == big[:PREVIEW_CHARS]
    assert result.size_bytes == len(big)
    async with session_scope(settings) as session:
        row, data = await artifact_store.read_artifact(session, settings, result.artifact)
    assert data.decode() == big
    assert row.workflow_id == workflow_id
    assert row.node_id == "node-1"

    copy = f"{unique('copy')}.txt"
    reference = f"{ARTIFACT_REF_PREFIX}{result.artifact}"
    await run("write_artifact", {"name": copy, "content": reference})
    assert (settings.artifacts_dir / copy).read_text() == big


async def test_large_structured_output_is_stored_as_json(settings: Settings) -> None:
    value = [{"i": i, "text": "x" * 40} for i in range(500)]
    result = await run("noop", {"value": value})
    assert result.artifact is not None
    assert result.artifact.endswith(".json")
    reread = await run("calculator", {"expression": "1"})  # unrelated call in between
    assert reread.output == 1
    async with session_scope(settings) as session:
        row, data = await artifact_store.read_artifact(session, settings, result.artifact)
    assert row.content_type == "application/json"
    assert data.startswith(b'[{"i":0,')


async def test_reference_to_missing_artifact_is_refused(settings: Settings) -> None:
    error = await refused("noop", {"value": f"{ARTIFACT_REF_PREFIX}{unique('nope')}.txt"})
    assert error.type == "ArtifactNotFound"


async def test_reference_can_fill_a_non_string_field(settings: Settings) -> None:
    name = f"{unique('expr')}.txt"
    await run("write_artifact", {"name": name, "content": "6*7"})
    result = await run("calculator", {"expression": f"{ARTIFACT_REF_PREFIX}{name}"})
    assert result.output == 42


async def test_memories_round_trip_through_remember_and_recall(settings: Settings) -> None:
    agent, other = unique("mem"), unique("mem")
    first = await run(
        "remember",
        {"agent": agent, "content": "The ACME invoices are due on the 5th", "tags": ["billing"]},
    )
    assert first.output["tags"] == ["billing"]
    await run("remember", {"agent": agent, "content": "Alice prefers short summaries"})
    await run("remember", {"agent": other, "content": "ACME invoices belong to someone else"})

    found = (await run("recall", {"agent": agent, "query": "invoice acme"})).output
    assert [m["content"] for m in found] == ["The ACME invoices are due on the 5th"]
    assert found[0]["tags"] == ["billing"]
    everything = (await run("recall", {"agent": agent, "query": "", "limit": 10})).output
    assert [m["content"] for m in everything] == [
        "Alice prefers short summaries",
        "The ACME invoices are due on the 5th",
    ]
    assert (await run("recall", {"agent": agent, "query": "kubernetes"})).output == []


async def test_remember_refuses_bad_agent_name(settings: Settings) -> None:
    error = await refused("remember", {"agent": "Not A Name!", "content": "x"})
    assert error.type == "ToolInputInvalid"


async def test_run_agent_for_unknown_agent_is_typed(settings: Settings) -> None:
    error = await refused("run_agent", {"agent": unique("ghost"), "prompt": "hi"})
    assert error.type == "AgentNotFound"
    assert error.non_retryable


@workflow.defn(sandboxed=False)
class CallToolWorkflow:
    """Calls one tool activity by name with a raw dict, the way DagWorkflow does."""

    @workflow.run
    async def run(self, tool: str, args: dict[str, Any]) -> ToolResult:
        return await workflow.execute_activity(
            tool,
            args,
            result_type=ToolResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=1)),
        )


async def test_tool_activities_through_temporal_succeed_and_fail_bad_input_once(
    client: Client, settings: Settings
) -> None:
    task_queue = f"tools-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[CallToolWorkflow],
        activities=TOOL_ACTIVITIES,
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        ok = await client.execute_workflow(
            CallToolWorkflow.run,
            args=["calculator", {"expression": "6*7"}],
            id=unique("call-tool"),
            task_queue=task_queue,
        )
        assert ok.output == 42

        handle = await client.start_workflow(
            CallToolWorkflow.run,
            args=["calculator", {"expression": 6}],
            id=unique("call-tool"),
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "ToolInputInvalid"
    attempts = [
        e.activity_task_started_event_attributes.attempt
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert attempts == [1]
