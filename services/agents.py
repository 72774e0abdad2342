"""Versioned agents: creation, activation and the agent-test workflow (answered at its end, or
followed as its agent writes)."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowHandle

from contracts.agents import AgentTestInput, AgentTestResult, ModelRef
from contracts.mcp import is_mcp_tool
from contracts.search import RUN_KIND_AGENT_TEST, search_attributes
from contracts.workflow_names import AGENT_TEST_WORKFLOW
from core.errors import Conflict, Invalid, NotFound
from core.models import Agent, AgentCreate, AgentUpdate, Provider
from core.models.agent import AgentBase
from core.settings import Settings
from services import live_output
from services.ids import short_id
from services.live_output import LiveDelta
from services.realtime import EventHub
from services.temporal_errors import run_workflow
from services.tool_names import unknown_tools
from services.waiting import StillRunning, require_worker, wait_bounded
from storage.mcp_servers import find_tools

AGENT_TEST_TIMEOUT = timedelta(minutes=5)


async def get_agent(session: AsyncSession, agent_id: int) -> Agent:
    """The agent version, or NotFound."""
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return agent


async def list_agents(
    session: AsyncSession, *, name: str | None, active: bool | None, limit: int, offset: int
) -> list[Agent]:
    """Agent versions by name then version."""
    query = select(Agent)
    if name is not None:
        query = query.where(Agent.name == name)
    if active is not None:
        query = query.where(Agent.is_active == active)
    query = query.order_by(col(Agent.name), col(Agent.version)).limit(limit).offset(offset)
    return list((await session.exec(query)).all())


async def _check_references(
    session: AsyncSession, *, provider_id: int | None, tools: list[str] | None
) -> None:
    if provider_id is not None and await session.get(Provider, provider_id) is None:
        raise Invalid(f"provider {provider_id} does not exist")
    if tools:
        unknown = unknown_tools(tools)
        mcp = [name for name in unknown if is_mcp_tool(name)]
        if mcp:
            _, missing = await find_tools(session, mcp)
            unknown = [name for name in unknown if name not in mcp or name in missing]
        if unknown:
            raise Invalid(f"unknown tool(s): {', '.join(unknown)}")


async def _check_fallbacks(session: AsyncSession, *, primary: ModelRef, fallbacks: list[ModelRef]) -> None:
    """Every fallback names a provider that exists, and no model is tried twice (a model that
    failed for good would only fail again)."""
    seen = {primary.label: "the version's own model"}
    for position, fallback in enumerate(fallbacks, start=1):
        if fallback.label in seen:
            raise Invalid(f"fallback {position} ({fallback.label}) repeats {seen[fallback.label]}")
        seen[fallback.label] = f"fallback {position}"
    wanted = sorted({f.provider_id for f in fallbacks})
    if not wanted:
        return
    found = set((await session.exec(select(Provider.id).where(col(Provider.id).in_(wanted)))).all())
    for position, fallback in enumerate(fallbacks, start=1):
        if fallback.provider_id not in found:
            raise Invalid(f"fallback {position}: provider {fallback.provider_id} does not exist")


async def _deactivate_all(session: AsyncSession, name: str) -> None:
    """Every version of `name` inactive, its rows locked first in id order (on PostgreSQL): two
    activations of one name at once then wait for each other. A bare UPDATE locks the rows in
    whatever order it meets them, and two of them deadlocked."""
    versions = select(Agent.id).where(col(Agent.name) == name).order_by(col(Agent.id)).with_for_update()
    await session.exec(versions)
    await session.exec(update(Agent).where(col(Agent.name) == name).values(is_active=False))


async def create_agent(session: AsyncSession, data: AgentCreate) -> Agent:
    """A new version of `data.name`: version 1, or one past the newest."""
    await _check_references(session, provider_id=data.provider_id, tools=data.tools)
    primary = ModelRef(provider_id=data.provider_id, model=data.model)
    await _check_fallbacks(session, primary=primary, fallbacks=data.fallbacks)
    newest = (await session.exec(select(func.max(Agent.version)).where(Agent.name == data.name))).one()
    version = (newest or 0) + 1
    activate = data.activate if data.activate is not None else version == 1
    if activate:
        await _deactivate_all(session, data.name)
    agent = Agent.model_validate(data, update={"version": version, "is_active": activate})
    session.add(agent)
    await session.commit()
    await session.refresh(agent)
    return agent


async def update_agent(session: AsyncSession, agent_id: int, data: AgentUpdate) -> Agent:
    """A change to a version's behaviour makes the next version of its name, so what version N
    was stays known (and runs that pinned it stay explainable). The new version is active when
    the edited one was; a patch that changes nothing answers the edited version as it is."""
    agent = await get_agent(session, agent_id)
    requested = data.model_dump(exclude_unset=True)
    required = ("provider_id", "model", "system_prompt", "tools", "fallbacks", "max_requests")
    nulled = sorted(k for k in required if k in requested and requested[k] is None)
    if nulled:
        raise Invalid(f"{', '.join(nulled)} cannot be null")
    current = agent.model_dump(include=set(requested))  # fallbacks as plain dicts, like `requested`
    changes = {key: value for key, value in requested.items() if current[key] != value}
    if not changes:
        return agent
    await _check_references(session, provider_id=changes.get("provider_id"), tools=changes.get("tools"))
    fields = AgentCreate.model_validate(
        {**agent.model_dump(include=set(AgentBase.model_fields)), **changes, "activate": agent.is_active}
    )
    return await create_agent(session, fields)


async def delete_agent(session: AsyncSession, agent_id: int) -> None:
    """Delete an inactive version; the active one must be replaced first."""
    agent = await get_agent(session, agent_id)
    if agent.is_active:
        raise Conflict(f"agent {agent.name} v{agent.version} is active; activate another version first")
    await session.delete(agent)
    await session.commit()


async def activate_agent(session: AsyncSession, agent_id: int) -> Agent:
    """Make this version the one active version of its name."""
    agent = await get_agent(session, agent_id)
    await _deactivate_all(session, agent.name)
    await session.flush()
    agent.is_active = True
    session.add(agent)
    await session.commit()
    await session.refresh(agent)
    return agent


async def require_agent_name(session: AsyncSession, name: str) -> None:
    """NotFound unless some version of the name exists (memories and goals name agents)."""
    found = (await session.exec(select(Agent.id).where(Agent.name == name).limit(1))).first()
    if found is None:
        raise NotFound(f"agent {name!r} does not exist")


async def resolve_agent(session: AsyncSession, name: str) -> Agent:
    """The active version of a name."""
    query = select(Agent).where(Agent.name == name, col(Agent.is_active))
    agent = (await session.exec(query)).first()
    if agent is None:
        raise NotFound(f"agent {name!r} has no active version")
    return agent


async def _start_test(
    session: AsyncSession, client: Client, settings: Settings, agent_id: int, prompt: str
) -> WorkflowHandle[Any, AgentTestResult]:
    """Start the agent-test workflow; NotFound for an unknown agent, NoWorker (503) when no worker
    is there to run it."""
    agent = await get_agent(session, agent_id)
    await require_worker(client, settings)
    return await client.start_workflow(
        AGENT_TEST_WORKFLOW,
        AgentTestInput(agent_id=agent_id, prompt=prompt),
        id=f"agent-test-{agent_id}-{short_id()}",
        task_queue=settings.task_queue,
        execution_timeout=AGENT_TEST_TIMEOUT,
        search_attributes=search_attributes(agent_name=agent.name, run_kind=RUN_KIND_AGENT_TEST),
        static_summary=f"Test agent {agent.name} v{agent.version} ({agent.model})",
        result_type=AgentTestResult,
    )


async def test_agent(
    session: AsyncSession, client: Client, settings: Settings, agent_id: int, prompt: str
) -> tuple[str, AgentTestResult | StillRunning]:
    """Run the agent-test workflow and wait a bounded time; returns (workflow id, result or
    StillRunning). NoWorker (503) when no worker is there to run it."""
    handle = await _start_test(session, client, settings, agent_id, prompt)
    return handle.id, await wait_bounded(handle, handle.result(), settings=settings)


async def _to_the_end(handle: WorkflowHandle[Any, AgentTestResult], settings: Settings) -> AgentTestResult:
    """The result however long the test runs (its execution timeout bounds it): a caller that
    follows it as it is written stays. NoWorker as for `test_agent` when no worker picked it up."""
    result = await wait_bounded(handle, handle.result(), settings=settings)
    if isinstance(result, StillRunning):
        return await run_workflow(handle.result(), workflow_id=handle.id)
    return result


async def stream_agent_test(
    session: AsyncSession, client: Client, settings: Settings, hub: EventHub, agent_id: int, prompt: str
) -> tuple[str, AsyncIterator[LiveDelta | AgentTestResult]]:
    """Start the agent-test workflow (errors as for `test_agent`); returns (workflow id, its
    agent's text as it is written, then its result). The iterator raises a domain error when the
    test fails."""
    handle = await _start_test(session, client, settings, agent_id, prompt)
    return handle.id, live_output.until_done(hub, handle.id, lambda: _to_the_end(handle, settings))
