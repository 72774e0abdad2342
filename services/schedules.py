"""Temporal Schedules for cron-driven runs (goals, DAGs): create or update, pause, delete, list.

A schedule is the only record of "when does this run next": nothing is copied to Postgres. The
cron string a person typed is kept in the scheduled action's memo because the server turns cron
expressions into calendar specs and does not answer the original text back.
"""

from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from contracts.schedules import RecentAction, ScheduleInfo
from core.errors import DomainError, Invalid, NotFound, Upstream
from core.settings import Settings

CATCHUP_WINDOW = timedelta(minutes=10)
"""After an outage, a missed slot still runs if it is at most this old; older ones are dropped
rather than replayed as a burst."""


def schedule_error(exc: RPCError, *, schedule_id: str, doing: str) -> DomainError:
    """The domain error for a failed schedule RPC, by status code."""
    if exc.status == RPCStatusCode.NOT_FOUND and doing != "create or update":
        return NotFound(f"schedule {schedule_id} not found")
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return Invalid(f"schedule {schedule_id} rejected by Temporal: {exc.message}")
    return Upstream(
        f"could not {doing} schedule {schedule_id}: {exc.message}",
        status_code=503 if exc.status == RPCStatusCode.UNAVAILABLE else 502,
        kind="ScheduleError",
    )


async def upsert_schedule(
    client: Client,
    settings: Settings,
    *,
    schedule_id: str,
    workflow: str,
    arg: Any,
    workflow_id_prefix: str,
    cron: str,
    timezone: str,
    search_attributes: TypedSearchAttributes,
    summary: str,
    execution_timeout: timedelta | None = None,
    paused: bool | None = None,
    note: str | None = None,
) -> None:
    """Create the schedule, or replace its action and spec.

    Temporal appends the scheduled time to `workflow_id_prefix`, so each run has its own id.
    Overlap policy SKIP: a slot that comes while the previous run still works is skipped.
    `paused` None keeps an existing schedule's paused state (a new one starts unpaused). Give it
    here rather than calling `pause_schedule` right after: the server may apply a pause patch
    before a preceding update, which then restores the old state.
    """
    action = ScheduleActionStartWorkflow(
        workflow,
        arg,
        id=workflow_id_prefix,
        task_queue=settings.task_queue,
        execution_timeout=execution_timeout,
        typed_search_attributes=search_attributes,
        static_summary=summary,
        memo={"schedule_id": schedule_id, "cron": cron, "timezone": timezone},
    )
    spec = ScheduleSpec(cron_expressions=[cron], time_zone_name=timezone)
    policy = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW)

    def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
        state = current.description.schedule.state
        if paused is not None:
            state = ScheduleState(paused=paused, note=note if note is not None else state.note)
        return ScheduleUpdate(
            schedule=Schedule(action=action, spec=spec, policy=policy, state=state),
            search_attributes=search_attributes,
        )

    try:
        try:
            await client.create_schedule(
                schedule_id,
                Schedule(
                    action=action,
                    spec=spec,
                    policy=policy,
                    state=ScheduleState(paused=bool(paused), note=note),
                ),
                search_attributes=search_attributes,
            )
        except ScheduleAlreadyRunningError:
            await client.get_schedule_handle(schedule_id).update(replace)
    except RPCError as exc:
        raise schedule_error(exc, schedule_id=schedule_id, doing="create or update") from None


async def delete_schedule(client: Client, schedule_id: str) -> None:
    """Delete a schedule; one that does not exist is already what the caller wants."""
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise schedule_error(exc, schedule_id=schedule_id, doing="delete") from None


async def pause_schedule(client: Client, schedule_id: str, note: str) -> None:
    """Pause; the note shows in the Web UI and `temporal schedule describe`."""
    try:
        await client.get_schedule_handle(schedule_id).pause(note=note)
    except RPCError as exc:
        raise schedule_error(exc, schedule_id=schedule_id, doing="pause") from None


async def unpause_schedule(client: Client, schedule_id: str, note: str) -> None:
    """Unpause; the next run is the next cron slot (missed slots are not replayed)."""
    try:
        await client.get_schedule_handle(schedule_id).unpause(note=note)
    except RPCError as exc:
        raise schedule_error(exc, schedule_id=schedule_id, doing="unpause") from None


async def _memo_value(client: Client, memo: Any, key: str) -> str | None:
    raw = (memo or {}).get(key)
    if raw is None:
        return None
    # A described memo is raw payloads: through the codec (they are encrypted), then converted.
    value = (await client.data_converter.decode([raw]))[0] if isinstance(raw, Payload) else raw
    return str(value)


async def info_of(client: Client, description: ScheduleDescription) -> ScheduleInfo:
    """A ScheduleInfo from a full description."""
    schedule = description.schedule
    action = schedule.action
    memo = action.memo if isinstance(action, ScheduleActionStartWorkflow) else None
    recent = [
        RecentAction(
            workflow_id=result.action.workflow_id,
            scheduled_at=result.scheduled_at,
            started_at=result.started_at,
        )
        for result in description.info.recent_actions
        if isinstance(result.action, ScheduleActionExecutionStartWorkflow)
    ]
    return ScheduleInfo(
        id=description.id,
        cron=await _memo_value(client, memo, "cron"),
        timezone=schedule.spec.time_zone_name,
        paused=schedule.state.paused,
        note=schedule.state.note,
        workflow_type=action.workflow if isinstance(action, ScheduleActionStartWorkflow) else None,
        next_runs=list(description.info.next_action_times),
        recent_actions=recent,
        num_actions=description.info.num_actions,
    )


async def describe_schedule(client: Client, schedule_id: str) -> ScheduleInfo:
    """One schedule, or NotFound."""
    try:
        description = await client.get_schedule_handle(schedule_id).describe()
    except RPCError as exc:
        raise schedule_error(exc, schedule_id=schedule_id, doing="describe") from None
    return await info_of(client, description)


async def describe_schedules(client: Client, prefix: str) -> list[ScheduleInfo]:
    """Every schedule whose id starts with `prefix`, sorted by id.

    Listing is eventually consistent (a schedule created a moment ago may be missing); each
    listed one is then described for its full, current state.
    """
    try:
        ids = sorted(
            [entry.id async for entry in await client.list_schedules() if entry.id.startswith(prefix)]
        )
    except RPCError as exc:
        raise schedule_error(exc, schedule_id=f"{prefix}*", doing="list") from None
    found: list[ScheduleInfo] = []
    for schedule_id in ids:
        try:
            found.append(await describe_schedule(client, schedule_id))
        except NotFound:
            continue  # deleted between listing and describing
    return found
