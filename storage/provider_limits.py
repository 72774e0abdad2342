"""Provider limits in the database: one admission decision at a time per provider, for every run,
workflow and worker process.

Why the database: it is the one store every worker process shares (PostgreSQL in production,
the SQLite file under `make run`). An in-process limiter (aiolimiter, an asyncio.Semaphore)
would hold per process, so N workers would let N times the limit through; Redis is not part of
the stack. See "Provider limits" in docs/models.md for the libraries looked at first.

How:
- Each model request to a limited provider is a row in `provider_leases`. It is queued first and
  admitted when the provider has capacity and no live request queued before it is still waiting
  (first come, first served across all workers).
- An admission locks the provider's row in `provider_limit_state` (an UPDATE: a row lock on
  PostgreSQL, the write lock on SQLite), so two workers never both take the last slot.
- `max_concurrency`: admitted, unfinished rows whose lease has not lapsed. The worker renews the
  lease while the request runs; a killed worker stops renewing and its slot comes back after
  `LEASE`, or at once when Temporal retries the same activity (the retry takes its row over).
- `requests_per_minute` / `tokens_per_minute`: a sliding window over the rows admitted in the
  last 60 seconds (exact, no burst allowance). Tokens are the estimate while a request is in
  flight and the answer's reported usage once it finished.
- Times come from PostgreSQL's clock (`clock_timestamp()`), so workers on other hosts agree;
  SQLite is one host's file, so its clock is that host's.
"""

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.provider_limits import Blocker
from core.db import dialect_of, upsert_insert
from core.models.common import utcnow
from core.models.provider import Provider, ProviderLease, ProviderLimitState

WINDOW = timedelta(minutes=1)
"""The per-minute limits' sliding window."""
LEASE = timedelta(seconds=30)
"""How long a queued or in-flight request holds its place without being renewed."""


@dataclass(frozen=True)
class Admission:
    """One look at the provider's capacity for a queued request."""

    lease_id: str
    admitted: bool
    blocked_by: Blocker | None = None
    ahead: int = 0
    """Live requests queued before this one."""
    retry_in: float | None = None
    """Seconds until the limit that blocks it frees up, where that is known (the windows)."""


async def db_now(session: AsyncSession) -> datetime:
    """The database's clock (PostgreSQL) or this host's (SQLite: a file on one host)."""
    if dialect_of(session) == "postgresql":
        now = (await session.exec(select(func.clock_timestamp()))).one()
        assert isinstance(now, datetime)
        return now
    return utcnow()


async def _lock(session: AsyncSession, provider_id: int) -> datetime:
    """Take the provider's admission lock for this transaction; answer the time after it."""
    touch = update(ProviderLimitState).where(col(ProviderLimitState.provider_id) == provider_id)
    if (await session.exec(touch.values(touched_at=utcnow()))).rowcount == 0:
        insert = upsert_insert(session)
        await session.exec(
            insert(ProviderLimitState)
            .values(provider_id=provider_id, touched_at=utcnow())
            .on_conflict_do_nothing(index_elements=["provider_id"])
        )
        await session.exec(touch.values(touched_at=utcnow()))
    return await db_now(session)


async def _place(
    session: AsyncSession, *, provider_id: int, holder: str, worker: str, estimate: int, now: datetime
) -> ProviderLease:
    """The holder's row, queued now if it has none, its place renewed."""
    mine = (
        await session.exec(
            select(ProviderLease).where(
                col(ProviderLease.provider_id) == provider_id,
                col(ProviderLease.holder) == holder,
                col(ProviderLease.finished_at).is_(None),
            )
        )
    ).first()
    queued_at = now
    if mine is not None and mine.admitted_at is not None:
        # An earlier attempt was admitted and never finished: its worker died mid-request. Its
        # request may have reached the provider, so it keeps counting in the windows; the retry
        # queues again in the place the request first had (ahead of those queued since).
        mine.finished_at = mine.lease_until = now
        session.add(mine)
        queued_at, mine = mine.queued_at, None
    if mine is None:
        mine = ProviderLease(
            id=uuid.uuid4().hex,
            provider_id=provider_id,
            holder=holder,
            worker=worker,
            queued_at=queued_at,
            lease_until=now,
        )
    mine.lease_until = now + LEASE
    mine.worker = worker
    mine.tokens = estimate
    session.add(mine)
    await session.flush()
    return mine


@dataclass(frozen=True)
class _Usage:
    in_flight: int
    requests: int
    tokens: int
    ahead: int


def _total(condition: ColumnElement[bool], value: Any = 1) -> Any:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


async def _usage(session: AsyncSession, now: datetime, mine: ProviderLease) -> _Usage:
    """What the provider has in flight and in the window, and how many live requests were queued
    before `mine`: one aggregate over the provider's rows."""
    admitted_at, queued_at, lease_id = (
        col(ProviderLease.admitted_at),
        col(ProviderLease.queued_at),
        col(ProviderLease.id),
    )
    live = col(ProviderLease.lease_until) > now
    in_window = admitted_at >= now - WINDOW
    before_mine = or_(queued_at < mine.queued_at, and_(queued_at == mine.queued_at, lease_id < mine.id))
    row = (
        await session.exec(
            select(
                _total(and_(admitted_at.is_not(None), col(ProviderLease.finished_at).is_(None), live)),
                _total(in_window),
                _total(in_window, col(ProviderLease.tokens)),
                _total(and_(admitted_at.is_(None), live, before_mine)),
            ).where(col(ProviderLease.provider_id) == mine.provider_id)
        )
    ).one()
    return _Usage(*(int(value) for value in row))


async def try_admit(
    session: AsyncSession, *, provider_id: int, holder: str, worker: str, estimate: int
) -> Admission:
    """Queue the request (first call) or renew its place, and admit it if the provider's limits,
    read now, allow; commits. `holder` names the request across attempts of its activity: a
    retry finds the row its dead predecessor left and takes its place over."""
    now = await _lock(session, provider_id)
    # Rows that neither hold a slot nor count in a window any more.
    await session.exec(
        delete(ProviderLease).where(
            col(ProviderLease.provider_id) == provider_id,
            col(ProviderLease.lease_until) < now,
            or_(col(ProviderLease.admitted_at).is_(None), col(ProviderLease.admitted_at) < now - WINDOW),
        )
    )
    mine = await _place(
        session, provider_id=provider_id, holder=holder, worker=worker, estimate=estimate, now=now
    )
    provider = (
        await session.exec(
            select(Provider).where(col(Provider.id) == provider_id).execution_options(populate_existing=True)
        )
    ).first()
    usage = await _usage(session, now, mine)
    blocked_by: Blocker | None = None
    retry_in: float | None = None
    if provider is None:
        pass  # deleted meanwhile: nothing to hold it to
    elif provider.max_concurrency is not None and usage.in_flight >= provider.max_concurrency:
        blocked_by = "max_concurrency"
    elif provider.requests_per_minute is not None and usage.requests >= provider.requests_per_minute:
        blocked_by = "requests_per_minute"
        retry_in = await _requests_free_in(session, mine, now, usage.requests - provider.requests_per_minute)
    elif (
        provider.tokens_per_minute is not None
        and usage.tokens  # a request larger than the whole budget goes alone into an empty window
        and usage.tokens + estimate > provider.tokens_per_minute
    ):
        blocked_by = "tokens_per_minute"
        over = usage.tokens + estimate - provider.tokens_per_minute
        retry_in = await _tokens_free_in(session, mine, now, over)
    elif usage.ahead:
        blocked_by = "queue"
    if blocked_by is None:
        mine.admitted_at = now
        session.add(mine)
    await session.commit()
    return Admission(
        mine.id, admitted=blocked_by is None, blocked_by=blocked_by, ahead=usage.ahead, retry_in=retry_in
    )


def _in_window(mine: ProviderLease, now: datetime) -> Any:
    return (
        select(col(ProviderLease.admitted_at), col(ProviderLease.tokens))
        .where(col(ProviderLease.provider_id) == mine.provider_id)
        .where(col(ProviderLease.admitted_at) >= now - WINDOW)
        .order_by(col(ProviderLease.admitted_at))
    )


async def _requests_free_in(session: AsyncSession, mine: ProviderLease, now: datetime, over: int) -> float:
    """Seconds until `over + 1` of the requests in the window have left it."""
    oldest = (await session.exec(_in_window(mine, now).offset(over).limit(1))).first()
    return 0.0 if oldest is None else max(0.0, (oldest[0] + WINDOW - now).total_seconds())


async def _tokens_free_in(session: AsyncSession, mine: ProviderLease, now: datetime, over: int) -> float:
    """Seconds until requests worth at least `over` tokens have left the window."""
    freed = 0
    for admitted_at, tokens in (await session.exec(_in_window(mine, now))).all():
        freed += tokens
        if freed >= over:
            return max(0.0, (admitted_at + WINDOW - now).total_seconds())
    return WINDOW.total_seconds()


async def renew(session: AsyncSession, lease_id: str) -> None:
    """Keep an in-flight request's slot (its worker is alive); commits."""
    now = await db_now(session)
    await session.exec(
        update(ProviderLease)
        .where(col(ProviderLease.id) == lease_id, col(ProviderLease.finished_at).is_(None))
        .values(lease_until=now + LEASE)
    )
    await session.commit()


async def finish(session: AsyncSession, lease_id: str, *, tokens: int | None) -> None:
    """Release the slot; the request keeps counting in the windows with the tokens it really
    used (`None`: no usage reported, the estimate stays); commits."""
    now = await db_now(session)
    values: dict[str, Any] = {"finished_at": now, "lease_until": now}
    if tokens is not None:
        values["tokens"] = tokens
    await session.exec(update(ProviderLease).where(col(ProviderLease.id) == lease_id).values(**values))
    await session.commit()


async def withdraw(session: AsyncSession, lease_id: str) -> None:
    """Take a request that was never admitted out of the queue (cancelled while waiting); commits."""
    queued = and_(col(ProviderLease.id) == lease_id, col(ProviderLease.admitted_at).is_(None))
    await session.exec(delete(ProviderLease).where(queued))
    await session.commit()


def estimate_tokens(prompt_chars: int, max_tokens: int | None) -> int:
    """A request's tokens before its answer: about 4 characters per token of prompt, plus the
    most it may answer when that is set."""
    return math.ceil(prompt_chars / 4) + (max_tokens or 0)
