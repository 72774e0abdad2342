"""Provider limits, piece by piece, on the session's PostgreSQL: the admission decisions every
worker shares (slots, leases, the queue's order), the model wrapper's Retry-After, and how the
status service finds a node whose request waits. The whole path across two worker processes is
`test_provider_limits_workers.py`."""

from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic_ai.direct import model_request
from pydantic_ai.messages import ModelRequest
from sqlmodel import col, select, update
from temporalio.api.common.v1 import Payloads
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.exceptions import ApplicationError

from activities.llm_models import provider_model
from contracts import errors
from contracts.dag import NodeState, NodeStatus
from contracts.provider_limits import ProviderWait
from core.db import session_scope
from core.models import ProviderCreate, ProviderKind
from core.models.common import utcnow
from core.models.provider import ProviderLease
from core.settings import Settings
from services.execution_status import provider_waits
from services.providers import create_provider
from storage import provider_limits as store
from tests.conftest import unique
from tests.fakes.openai_server import Fail, FakeOpenAI


async def limited_provider(settings: Settings, fake: FakeOpenAI, **limits: int) -> int:
    async with session_scope(settings) as session:
        provider = await create_provider(
            session,
            settings,
            ProviderCreate.model_validate(
                {
                    "name": unique("limited"),
                    "kind": ProviderKind.openai_compatible,
                    "base_url": fake.base_url,
                    "api_key": fake.api_key,
                    **limits,
                }
            ),
        )
    assert provider.id is not None
    return provider.id


async def admit(settings: Settings, provider_id: int, holder: str, estimate: int = 10) -> store.Admission:
    async with session_scope(settings) as session:
        return await store.try_admit(
            session, provider_id=provider_id, holder=holder, worker="test:1", estimate=estimate
        )


async def finish(settings: Settings, lease_id: str, tokens: int | None = None) -> None:
    async with session_scope(settings) as session:
        await store.finish(session, lease_id, tokens=tokens)


async def test_the_last_slot_goes_to_one_request_and_comes_back_when_it_finishes(
    settings: Settings, fake_llm: FakeOpenAI
) -> None:
    provider_id = await limited_provider(settings, fake_llm, max_concurrency=1)
    first = await admit(settings, provider_id, "a")
    second = await admit(settings, provider_id, "b")
    assert first.admitted and not second.admitted
    assert second.blocked_by == "max_concurrency"
    await finish(settings, first.lease_id)
    assert (await admit(settings, provider_id, "b")).admitted


async def test_a_killed_workers_slot_comes_back_when_its_lease_lapses(
    settings: Settings, fake_llm: FakeOpenAI
) -> None:
    provider_id = await limited_provider(settings, fake_llm, max_concurrency=1)
    dead = await admit(settings, provider_id, "dead-worker")
    assert dead.admitted
    assert not (await admit(settings, provider_id, "waiting")).admitted
    async with session_scope(settings) as session:  # its worker stopped renewing the lease
        lapsed = utcnow() - timedelta(seconds=1)
        await session.exec(
            update(ProviderLease).where(col(ProviderLease.id) == dead.lease_id).values(lease_until=lapsed)
        )
        await session.commit()
    assert (await admit(settings, provider_id, "waiting")).admitted


async def test_a_retried_attempt_takes_over_the_slot_its_dead_predecessor_held(
    settings: Settings, fake_llm: FakeOpenAI
) -> None:
    provider_id = await limited_provider(settings, fake_llm, max_concurrency=1, requests_per_minute=10)
    attempt_1 = await admit(settings, provider_id, "wf/run/activity#1")
    assert attempt_1.admitted
    assert not (await admit(settings, provider_id, "other")).admitted
    attempt_2 = await admit(settings, provider_id, "wf/run/activity#1")
    assert attempt_2.admitted and attempt_2.lease_id != attempt_1.lease_id
    # The dead attempt's request may have reached the provider: it still counts per minute.
    async with session_scope(settings) as session:
        window = await session.exec(
            select(ProviderLease).where(col(ProviderLease.provider_id) == provider_id)
        )
        assert sum(1 for lease in window.all() if lease.admitted_at is not None) == 2


async def test_queued_requests_are_admitted_first_come_first_served(
    settings: Settings, fake_llm: FakeOpenAI
) -> None:
    provider_id = await limited_provider(settings, fake_llm, max_concurrency=1)
    running = await admit(settings, provider_id, "running")
    assert not (await admit(settings, provider_id, "first")).admitted
    assert not (await admit(settings, provider_id, "second")).admitted
    await finish(settings, running.lease_id)
    later = await admit(settings, provider_id, "second")
    assert (later.admitted, later.blocked_by, later.ahead) == (False, "queue", 1)
    assert (await admit(settings, provider_id, "first")).admitted


async def test_tokens_count_the_answers_real_usage_once_finished(
    settings: Settings, fake_llm: FakeOpenAI
) -> None:
    provider_id = await limited_provider(settings, fake_llm, tokens_per_minute=100)
    first = await admit(settings, provider_id, "first", estimate=10)
    assert first.admitted
    await finish(settings, first.lease_id, tokens=95)
    blocked = await admit(settings, provider_id, "second", estimate=10)
    assert (blocked.admitted, blocked.blocked_by) == (False, "tokens_per_minute")
    assert blocked.retry_in is not None and 0 < blocked.retry_in <= 60
    # A request bigger than the whole budget is not refused forever: it goes into an empty window.
    other = await limited_provider(settings, fake_llm, tokens_per_minute=100)
    assert (await admit(settings, other, "huge", estimate=500)).admitted


async def test_a_429_retry_after_becomes_the_exact_next_retry_delay(
    settings: Settings, fake_llm: FakeOpenAI
) -> None:
    provider_id = await limited_provider(settings, fake_llm)
    model_name = unique("fake-model")
    # Longer than the retry policy's maximum interval (30 s), which pydantic-ai's own handling caps it at.
    fake_llm.script(model_name, Fail(429, "rate limited", headers={"Retry-After": "45"}))
    model = await provider_model(provider_id, model_name)
    with pytest.raises(ApplicationError) as caught:
        await model_request(model, [ModelRequest.user_text_prompt("hello")])
    assert caught.value.next_retry_delay == timedelta(seconds=45)
    assert (caught.value.type, caught.value.non_retryable) == (errors.PROVIDER_UNAVAILABLE, False)
    # Without a Retry-After the error is the model's own, left to the retry policy.
    fake_llm.script(model_name, Fail(503, "overloaded"))
    with pytest.raises(Exception) as plain:
        await model_request(model, [ModelRequest.user_text_prompt("hello")])
    assert not isinstance(plain.value, ApplicationError)


# --- the status service ------------------------------------------------------------------------


def wait(blocked_by: str = "requests_per_minute") -> ProviderWait:
    return ProviderWait.model_validate(
        {"provider_id": 1, "provider": "openai", "blocked_by": blocked_by, "since": utcnow()}
    )


async def described(client: Client, pending: dict[str, Any]) -> WorkflowExecutionDescription:
    """A describe answer whose pending activities heartbeat `pending` (id → detail or None)."""
    infos = []
    for activity_id, detail in pending.items():
        info = PendingActivityInfo(activity_id=activity_id)
        if detail is not None:
            info.heartbeat_details.CopyFrom(Payloads(payloads=await client.data_converter.encode([detail])))
        infos.append(info)
    return cast(
        WorkflowExecutionDescription,
        SimpleNamespace(raw_description=DescribeWorkflowExecutionResponse(pending_activities=infos)),
    )


def running(*ids: str) -> list[NodeState]:
    return [NodeState(id=node_id, status=NodeStatus.running) for node_id in ids]


async def test_a_node_whose_agent_request_waits_shows_why(client: Client) -> None:
    nodes = running("sum", "fetch", "sum-2", "ask")
    description = await described(
        client,
        {
            "sum-1-agent-1": wait().detail(),
            "fetch-1": {"progress": 3},
            "sum-2-1-agent-1": None,
            "ask-2-agent-1-fallback-1": wait("max_concurrency").detail(),
        },
    )
    marked = {n.id: n.waiting_reason for n in await provider_waits(nodes, description, client.data_converter)}
    assert marked == {
        "sum": "waiting for provider capacity (openai: requests_per_minute)",
        "fetch": None,
        "sum-2": None,
        "ask": "waiting for provider capacity (openai: max_concurrency)",
    }


async def test_an_agent_loop_request_is_matched_to_its_node_only_when_that_is_unambiguous(
    client: Client,
) -> None:
    # The loop's model requests have the SDK's numbered ids; "tool" is named by its activity.
    description = await described(client, {"7": wait("queue").detail(), "tool-1": None})
    marked = await provider_waits(running("loop", "tool"), description, client.data_converter)
    assert [n.waiting_reason for n in marked] == [
        "waiting for provider capacity (openai: 0 queued before it)",
        None,
    ]
    # Two nodes no activity names, one waiting request: which one waits is not known.
    marked = await provider_waits(running("loop", "other", "tool"), description, client.data_converter)
    assert [n.waiting_reason for n in marked] == [None, None, None]
