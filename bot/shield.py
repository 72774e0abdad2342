"""Steps that must not stop halfway when the bot is stopped (SIGTERM, a restart)."""

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def to_the_end(step: Coroutine[Any, Any, T]) -> T:
    """Run `step` to its end even if the caller is cancelled meanwhile, then let the cancellation
    through. For a Telegram call and the write that records it: one without the other would be
    repeated (or lost) after a restart."""
    work = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise
