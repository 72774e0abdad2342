"""DagWorkflow on a real dev server: concurrency, templates, retries, policies, budgets."""

import asyncio

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from contracts.dag import ExecutionStatus, NodeStatus, RetrySpec
from core.db import session_scope
from core.settings import get_settings
from storage import artifacts
from tests.workflows.dag_fakes import CALLS, make_worker, new_queue, node, spec, start
from workflows.dag import DagWorkflow


async def test_independent_nodes_run_concurrently_up_to_max_parallel(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        *(node(f"s{i}", "slow", input={"seconds": 0.6}) for i in range(4)),
        node("last", depends_on=["s0", "s1", "s2", "s3"]),
        max_parallel=2,
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        result = await handle.result()
        status = await handle.query(DagWorkflow.status)
    assert result.status == ExecutionStatus.succeeded
    spans = {n.id: (n.started_at, n.finished_at) for n in status.nodes if n.started_at and n.finished_at}
    slow = sorted(spans[f"s{i}"] for i in range(4))
    # Two at a time: the first two overlap, the third starts only after one of them finished.
    assert slow[1][0] < slow[0][1]
    assert slow[2][0] >= min(slow[0][1], slow[1][1])
    assert spans["last"][0] >= max(end for _, end in slow)
    assert status.done == status.total == 5


async def test_templates_pass_params_and_node_outputs_with_types(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("a", "echo", input={"n": "{{params.count}}", "obj": {"k": [1, 2]}}),
        node(
            "b",
            "echo",
            input={
                "n": "{{nodes.a.output.n}}",
                "s": "got {{nodes.a.output.obj}} x{{params.count}}",
                "first": "{{nodes.a.output.obj.k.0}}",
            },
            depends_on=["a"],
        ),
        params={"count": 1},
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag, params={"count": 7})
        result = await handle.result()
    assert result.outputs["b"] == {"n": 7, "s": 'got {"k": [1, 2]} x7', "first": 1}


async def test_node_failing_then_succeeding_on_retry(client: Client) -> None:
    queue = new_queue()
    key = new_queue()
    dag = spec(
        node(
            "f",
            "flaky",
            input={"key": key, "fail_times": 2},
            retry=RetrySpec(max_attempts=3, initial_interval_s=0.05),
        )
    )
    async with make_worker(client, queue):
        result = await (await start(client, queue, dag)).result()
    assert CALLS[key] == 3
    assert result.nodes[0].status == NodeStatus.succeeded
    assert result.outputs["f"] == {"attempt": 3}


async def test_continue_policy_skips_dependents_runs_others_and_fails_with_status_queryable(
    client: Client,
) -> None:
    queue = new_queue()
    key, other = new_queue(), new_queue()
    dag = spec(
        node("bad", "flaky", input={"key": key, "fail_times": 9}, retry=RetrySpec(max_attempts=1)),
        node("child", depends_on=["bad"]),
        node("grandchild", depends_on=["child"]),
        node("other", input={"key": other}),
        on_failure="continue",
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        # The query replays the closed workflow: its final state is what resume-with-reuse reads.
        status = await handle.query(DagWorkflow.status)
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "DagFailed"
    states = {n.id: n.status for n in status.nodes}
    assert states == {"bad": "failed", "child": "skipped", "grandchild": "skipped", "other": "succeeded"}
    assert status.execution_status == ExecutionStatus.failed
    assert "Flaky" in (status.nodes[0].error or "")
    assert CALLS[other] == 1


async def test_fail_policy_cancels_running_nodes_and_fails_the_execution(client: Client) -> None:
    queue = new_queue()
    key = new_queue()
    dag = spec(
        node("bad", "flaky", input={"key": key, "fail_times": 9}, retry=RetrySpec(max_attempts=1)),
        node("long", "slow", input={"seconds": 30}),
        node("after", depends_on=["bad"]),
        on_failure="fail",
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        status = await handle.query(DagWorkflow.status)
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "DagFailed"
    assert {n.id: n.status for n in status.nodes} == {
        "bad": "failed",
        "long": "cancelled",
        "after": "skipped",
    }


async def test_token_budget_exceeded_fails_the_run_cleanly(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("one", "echo", input={"tokens": 60}),
        node("two", "echo", input={"tokens": 60}, depends_on=["one"]),
        node("three", "echo", depends_on=["two"]),
        max_tokens_per_run=100,
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        status = await handle.query(DagWorkflow.status)
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "TokenBudgetExceeded"
    assert failure.value.cause.non_retryable
    assert status.usage.total_tokens == 120
    assert {n.id: n.status for n in status.nodes}["three"] == "skipped"


async def test_large_output_goes_to_an_artifact_and_travels_by_reference(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("big", "echo", input={"big": 40_000}),
        node("use", "echo", input={"ref": "{{nodes.big.output}}"}, depends_on=["big"]),
    )
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        result = await handle.result()
        history = await handle.fetch_history()
    big = next(n for n in result.nodes if n.id == "big")
    assert big.artifact is not None and big.output is None
    assert result.outputs["use"] == {"ref": f"artifact://{big.artifact}"}
    # Offloaded like any artifact: recorded, so `GET /artifacts` lists it.
    async with session_scope(get_settings()) as session:
        row = await artifacts.get_artifact(session, big.artifact)
    assert row.workflow_id == handle.id and row.node_id == "big" and row.size_bytes > 40_000
    assert big.output_preview.startswith('{"blob": "xxx')
    # The workflow's own state (carried, queried, returned) never holds the 40 KB value.
    completed = history.events[-1].workflow_execution_completed_event_attributes
    assert len(completed.result.payloads[0].data) < 5_000


async def test_events_are_published_on_the_events_topic_with_offsets(client: Client) -> None:
    from temporalio.contrib.workflow_streams import WorkflowStreamClient

    from contracts.dag import DagEvent

    queue = new_queue()
    dag = spec(node("a"), node("b", depends_on=["a"]))
    async with make_worker(client, queue):
        handle = await start(client, queue, dag)
        await handle.result()
        stream = WorkflowStreamClient.create(client, handle.id)
        items = [item async for item in stream.subscribe("events", result_type=DagEvent)]
    kinds = [(i.data.kind, i.data.node_id) for i in items]
    assert kinds == [
        ("execution_started", None),
        ("node_started", "a"),
        ("node_succeeded", "a"),
        ("node_started", "b"),
        ("node_succeeded", "b"),
        ("execution_succeeded", None),
    ]
    assert [i.offset for i in items] == list(range(6))
    assert [i.data.seq for i in items] == list(range(1, 7))
    await asyncio.sleep(0)
