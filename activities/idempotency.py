"""Side effects that happen once per activity, however often Temporal retries it.

A retried activity runs its code again: without a record, `remember` would store a second memory
and a POST would be sent twice. Each write is therefore keyed by where it happens — workflow id,
run id, activity id (a DAG node's activity id names the node and its attempt) — plus what it
writes (a fingerprint of its input) and how many identical writes came before it in the same
attempt (a sequence number: a nested agent run through `run_agent` makes several tool calls
inside one activity). The same write at the same place on a retry finds the earlier record in the
`side_effects` table:

- `once` (database writes): the write and its record commit in one transaction, so either both
  exist or neither does; a retry returns the recorded result. Exactly once.
- `once_external` (a request to another system): the record is committed as `started` before the
  request goes out and finished with the result after. A retry that finds `done` returns the
  result; one that finds `started` cannot know whether the earlier attempt reached the other side
  and raises `OutcomeUnknown` — unless the failure proved the request never left, in which case
  the record was released and the retry sends it.

Outside an activity (API routes calling services) there is no retry to guard against and both
run the write directly. The alternative, a unique idempotency column on each written table, would
spread the same logic over every table and could not cover HTTP; one small table covers both.
"""

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic_core import to_json
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from core.db import session_scope
from core.models.side_effect import SideEffect, SideEffectStatus
from core.settings import get_settings

Json = Any

_seen: ContextVar[Counter[str] | None] = ContextVar("goalflow_side_effects_seen", default=None)


class OutcomeUnknown(Exception):
    """An earlier attempt began this external side effect and never recorded how it ended."""


@contextmanager
def side_effect_scope() -> Iterator[None]:
    """Number the side effects of one activity attempt; nested scopes share the outer count.

    Entered by every tool run (`run_tool`): the outermost entry in an activity starts the count
    at zero, so a retry numbers its writes the same way as the attempt before it.
    """
    if _seen.get() is not None:
        yield
        return
    token = _seen.set(Counter())
    try:
        yield
    finally:
        _seen.reset(token)


def effect_key(kind: str, request: Json) -> tuple[str, str] | None:
    """(key, readable scope) for the next `kind` write of `request` here; None outside activities."""
    if not activity.in_activity():
        return None
    info = activity.info()
    if not info.workflow_id:
        return None
    fingerprint = hashlib.sha256(to_json(request)).hexdigest()[:16]
    seen = _seen.get()
    number = 0
    if seen is not None:
        number = seen[f"{kind}/{fingerprint}"]
        seen[f"{kind}/{fingerprint}"] += 1
    scope = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}/{kind}/{fingerprint}#{number}"
    return hashlib.sha256(scope.encode()).hexdigest(), scope[-1000:]


async def _recorded(session: AsyncSession, key: str) -> SideEffect | None:
    return (await session.exec(select(SideEffect).where(SideEffect.key == key))).first()


async def once(kind: str, request: Json, write: Callable[[AsyncSession], Awaitable[Json]]) -> Json:
    """Run a database write once per place in a workflow: `write` must not commit.

    The write and its record commit together; a retry (or a second attempt racing a zombie first
    one) gets the result recorded by whichever committed first.
    """
    key = effect_key(kind, request)
    async with session_scope(get_settings()) as session:
        if key is None:
            result = await write(session)
            await session.commit()
            return result
        earlier = await _recorded(session, key[0])
        if earlier is not None and earlier.status == SideEffectStatus.done:
            return earlier.result
        result = await write(session)
        session.add(
            SideEffect(key=key[0], scope=key[1], kind=kind, status=SideEffectStatus.done, result=result)
        )
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            earlier = await _recorded(session, key[0])
            if earlier is None or earlier.status != SideEffectStatus.done:
                raise
            return earlier.result
        return result


async def once_external(
    kind: str,
    request: Json,
    perform: Callable[[], Awaitable[Json]],
    *,
    never_sent: Callable[[BaseException], bool],
) -> Json:
    """Perform an external side effect at most once per place in a workflow.

    `never_sent(exc)` says whether a failure proves the effect did not happen (a refused
    connection); then the record is released and a retry may try again. Any other failure leaves
    the record `started`, and the retry raises OutcomeUnknown instead of repeating the effect.
    """
    key = effect_key(kind, request)
    if key is None:
        return await perform()
    settings = get_settings()
    async with session_scope(settings) as session:
        session.add(SideEffect(key=key[0], scope=key[1], kind=kind))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            earlier = await _recorded(session, key[0])
            if earlier is not None and earlier.status == SideEffectStatus.done:
                return earlier.result
            raise OutcomeUnknown(
                f"an earlier attempt of this {kind} may have taken effect and did not record its outcome"
            ) from None
    try:
        result = await perform()
    except BaseException as exc:
        if never_sent(exc):
            async with session_scope(settings) as session:
                await session.exec(delete(SideEffect).where(col(SideEffect.key) == key[0]))
                await session.commit()
        raise
    async with session_scope(settings) as session:
        row = await _recorded(session, key[0])
        if row is not None:
            row.status = SideEffectStatus.done
            row.result = result
            session.add(row)
            await session.commit()
    return result
