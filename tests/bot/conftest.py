"""The bot's tests: the real bot (aiogram's own aiohttp session, handlers, middlewares) against the
fake Bot API server over HTTP, with the session's real Temporal, worker, PostgreSQL and fake LLM."""

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from bot.app import BotApp
from core.settings import Settings
from tests.fakes.telegram_server import Call, FakeTelegram

ALICE = 1001
BOB = 1002
STRANGER = 666
ALLOWED = [ALICE, BOB]
INTERVAL_S = 1.0
"""The progress edit interval the tests run with (the default is 3 s)."""


@pytest_asyncio.fixture(scope="module")
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
def bot_settings(settings: Settings, telegram: FakeTelegram) -> Settings:
    """The session's settings plus a bot on the fake Bot API server."""
    return settings.model_copy(
        update={
            "telegram_bot_token": _secret(telegram.token),
            "telegram_api_base": telegram.base_url,
            "telegram_allowed_user_ids": ALLOWED,
            "telegram_progress_interval_s": INTERVAL_S,
        }
    )


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


@asynccontextmanager
async def running_bot(settings: Settings, client: Client) -> AsyncIterator[BotApp]:
    """A BotApp serving until the block ends (then stopped as on SIGTERM)."""
    app = BotApp(settings, client, polling_timeout=1)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest_asyncio.fixture(scope="module")
async def bot(
    bot_settings: Settings, client: Client, api: httpx.AsyncClient, telegram: FakeTelegram
) -> AsyncIterator[BotApp]:
    """One bot for a test module (the API fixture brings the worker)."""
    async with running_bot(bot_settings, client) as app:
        await telegram.wait_call("deleteWebhook")
        yield app


class Chat:
    """A person talking to the bot in their private chat."""

    def __init__(self, telegram: FakeTelegram, user_id: int, first_name: str = "Ada") -> None:
        self.tg = telegram
        self.user = telegram.user(user_id, first_name, username=first_name.lower())
        self.id = user_id
        self._pressed: dict[int, str] = {}

    async def say(self, text: str, *, reply_to: int | None = None) -> int:
        """Send a message (a reply to the bot's message `reply_to`, if given); the number of bot
        calls before it (to look only at what follows)."""
        mark = len(self.tg.calls)
        update = self.tg.message_update(self.user, text)
        if reply_to is not None:
            update["message"]["reply_to_message"] = self.tg.messages[(self.id, reply_to)]
        await self.tg.inject(update)
        return mark

    async def press(self, message_id: int, data: str, *, chat_id: int | None = None) -> int:
        """Press a button; the mark to read what follows (`answered` gives the popup text)."""
        mark = len(self.tg.calls)
        update = self.tg.callback_update(self.user, chat_id or self.id, message_id, data)
        self._pressed[mark] = update["callback_query"]["id"]
        await self.tg.inject(update)
        return mark

    async def answered(self, since: int) -> str:
        """What the bot answered to the press made at mark `since`."""
        query_id = self._pressed[since]
        call = await self.tg.wait_call("answerCallbackQuery", callback_query_id=query_id)
        return str(call.params.get("text", ""))

    def replies(self, since: int, method: str = "sendMessage") -> list[Call]:
        return [c for c in self.tg.calls[since:] if c.method == method and c.params.get("chat_id") == self.id]

    async def reply(
        self, since: int, *, method: str = "sendMessage", where: Callable[[Call], bool] = lambda c: True
    ) -> Call:
        """The first answer in this chat after `since` that satisfies `where`."""
        found: Call = await self.tg.wait_for(
            lambda: next((c for c in self.replies(since, method) if where(c)), None),
            what=f"{method} to {self.id}",
        )
        return found


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def done_count(text: str) -> tuple[int, int] | None:
    match = re.search(r"(\d+)/(\d+) nodes done", text)
    return (int(match.group(1)), int(match.group(2))) if match else None
