"""`on_budget: "ask"`: a run that has used its token budget starts no further node until a person
raises the budget above what was used (`raise_budget` update or signal); `fail` is unchanged.

Record the kept history again with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/test_dag_budget_ask.py`.
"""

import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.exceptions import ApplicationError

from contracts.dag import BudgetRaise, DagEvent, DagSpec, ExecutionStatus, NodeSpec
from tests.workflows.dag_fakes import CALLS, make_worker, new_queue, node, spec, start, until
from tests.workflows.replay import HISTORIES, record, replayer
from workflows.dag import DagWorkflow

RECORDED = HISTORIES / "dag_budget_ask.json"


def chain(key: str, *, on_budget: str = "ask") -> DagSpec:
    """60 + 60 tokens against a budget of 100: the budget is reached before `c` would start."""
    return spec(
        node("a", "echo", input={"tokens": 60}),
        node("b", "echo", input={"tokens": 60}, depends_on=["a"]),
        node("c", "echo", input={"key": key}, depends_on=["b"]),
        max_tokens_per_run=100,
        on_budget=on_budget,
    )


async def test_ask_pauses_at_the_budget_and_a_raise_lets_the_run_succeed(client: Client) -> None:
    queue, key = new_queue(), new_queue()
    async with make_worker(client, queue):
        handle = await start(client, queue, chain(key))
        paused = await until(handle, lambda s: s.waiting_reason is not None)
        assert paused.execution_status == ExecutionStatus.suspended
        assert paused.waiting_reason == "token budget reached: used 120 of 100"
        assert paused.max_tokens_per_run == 100 and paused.suspended_node is None
        assert {n.id: n.status for n in paused.nodes}["c"] == "pending"
        assert CALLS[key] == 0
        for too_low in (100, 120):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(DagWorkflow.raise_budget, BudgetRaise(max_tokens_per_run=too_low))
            assert isinstance(refused.value.cause, ApplicationError)
            assert refused.value.cause.type == "BudgetTooLow"
            assert "above the 120 tokens" in refused.value.cause.message
        await handle.execute_update(
            DagWorkflow.raise_budget, BudgetRaise(max_tokens_per_run=200, comment="worth it")
        )
        result = await handle.result()
        status = await handle.query(DagWorkflow.status)
        stream = WorkflowStreamClient.create(client, handle.id)
        events = [item.data async for item in stream.subscribe("events", result_type=DagEvent)]
        history = await handle.fetch_history()
    assert result.status == ExecutionStatus.succeeded
    assert CALLS[key] == 1
    assert result.usage.total_tokens == 120
    assert status.max_tokens_per_run == 200 and status.waiting_reason is None
    budget = [(e.kind, e.message) for e in events if e.kind.startswith("execution_budget")]
    assert budget == [
        ("execution_budget_reached", "token budget reached: used 120 of 100"),
        ("execution_budget_raised", "token budget raised to 200: worth it"),
    ]
    order = [(e.kind, e.node_id) for e in events]
    assert order.index(("execution_budget_raised", None)) < order.index(("node_started", "c"))
    await replayer(DagWorkflow).replay_workflow(history)
    record(RECORDED, history)


async def test_the_raise_signal_ignores_a_budget_below_what_was_used(client: Client) -> None:
    queue, key = new_queue(), new_queue()
    async with make_worker(client, queue):
        handle = await start(client, queue, chain(key))
        await until(handle, lambda s: s.waiting_reason is not None)
        await handle.signal(DagWorkflow.raise_budget_signal, BudgetRaise(max_tokens_per_run=110))
        await handle.signal(DagWorkflow.raise_budget_signal, BudgetRaise(max_tokens_per_run=121))
        result = await handle.result()
        status = await handle.query(DagWorkflow.status)
        stream = WorkflowStreamClient.create(client, handle.id)
        events = [item.data async for item in stream.subscribe("events", result_type=DagEvent)]
    assert result.status == ExecutionStatus.succeeded and CALLS[key] == 1
    assert status.max_tokens_per_run == 121
    raised = [e.message for e in events if e.kind == "execution_budget_raised"]
    assert raised == ["token budget raised to 121"]


async def test_fail_is_still_the_default_and_fails_past_the_budget(client: Client) -> None:
    queue, key = new_queue(), new_queue()
    async with make_worker(client, queue):
        handle = await start(client, queue, chain(key, on_budget="fail"))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "TokenBudgetExceeded"
    assert CALLS[key] == 0


async def test_ask_does_not_pause_when_no_further_node_would_start(client: Client) -> None:
    queue = new_queue()
    dag = spec(
        node("a", "echo", input={"tokens": 60}),
        node("b", "echo", input={"tokens": 60}, depends_on=["a"]),
        max_tokens_per_run=100,
        on_budget="ask",
    )
    async with make_worker(client, queue):
        result = await (await start(client, queue, dag)).result()
    assert result.status == ExecutionStatus.succeeded and result.usage.total_tokens == 120


async def test_raising_an_execution_without_a_budget_is_refused(client: Client) -> None:
    queue = new_queue()
    async with make_worker(client, queue):
        handle = await start(client, queue, spec(node("gated", requires_approval=True)))
        await until(handle, lambda s: s.nodes[0].status == "waiting_approval")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(DagWorkflow.raise_budget, BudgetRaise(max_tokens_per_run=10))
        await handle.cancel()
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "NoTokenBudget"


def test_ask_needs_a_budget_and_deadlines_need_approval() -> None:
    with pytest.raises(ValidationError, match="on_budget 'ask' needs 'max_tokens_per_run'"):
        spec(node("a"), on_budget="ask")
    with pytest.raises(ValidationError, match="need 'requires_approval'"):
        NodeSpec(id="a", tool="noop", approval_timeout_s=5)
    with pytest.raises(ValidationError, match="'on_timeout' needs 'approval_timeout_s'"):
        NodeSpec(id="a", tool="noop", requires_approval=True, on_timeout="approve")
    # At their defaults the new fields stay out of the JSON that travels in workflow inputs.
    plain = spec(node("a", requires_approval=True))
    assert "on_budget" not in plain.model_dump_json() and "on_timeout" not in plain.model_dump_json()
