"""Access control: only TELEGRAM_ALLOWED_USER_IDS reach a handler.

An outer middleware on every update, so a stranger's message or button press is answered with
one polite refusal and goes no further: no handler runs, nothing is stored.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User

from bot import texts
from core.settings import Settings
from services.telegram_access import is_allowed

log = logging.getLogger("goalflow.bot")


class AllowListMiddleware(BaseMiddleware):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if is_allowed(self._settings, user.id if user else None):
            return await handler(event, data)
        log.info("refused an update from user %s", user.id if user else "unknown")
        if isinstance(event, Update):
            if event.message is not None:
                await event.message.answer(texts.REFUSAL)
            elif event.callback_query is not None:
                await event.callback_query.answer(texts.REFUSAL, show_alert=True)
        return None
