"""Every failure ends as one short sentence to the person, never a traceback."""

import html
import logging

from aiogram import Router
from aiogram.types import ErrorEvent

from bot import texts
from core.errors import DomainError

log = logging.getLogger("goalflow.bot")


async def on_error(event: ErrorEvent) -> bool:
    """Domain errors carry a message safe to show; anything else is logged and apologised for."""
    exc = event.exception
    if not isinstance(exc, DomainError):
        log.error("update %s failed: %r", event.update.update_id, exc, exc_info=exc)
    text = texts.error(exc)
    update = event.update
    if update.message is not None:
        await update.message.answer(text)
    elif update.callback_query is not None:
        await update.callback_query.answer(html.unescape(text)[:200], show_alert=True)
    return True


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="errors")
    found.errors.register(on_error)
    return found
