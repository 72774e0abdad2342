"""`POST /webhook/telegram`: the secret header is checked, strangers are refused in the answer, and
an accepted update reaches the bot's dispatcher (the bot in webhook mode reads what the API stored)."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client

from bot.app import BotApp
from core.db import session_scope
from core.models import TelegramUpdate
from core.settings import Settings
from services.telegram_access import REFUSAL
from tests.bot.conftest import ALICE, STRANGER, running_bot
from tests.conftest import api_client
from tests.fakes.telegram_server import FakeTelegram

SECRET = "webhook-secret-for-tests"
URL = "https://goalflow.example/webhook/telegram"


@pytest.fixture(scope="module")
def hook_settings(bot_settings: Settings) -> Settings:
    return bot_settings.model_copy(
        update={"telegram_webhook_url": URL, "telegram_webhook_secret": SecretStr(SECRET)}
    )


@pytest_asyncio.fixture(scope="module")
async def hook_api(hook_settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(hook_settings) as http:
        yield http


@pytest_asyncio.fixture(scope="module")
async def hook_bot(hook_settings: Settings, client: Client, telegram: FakeTelegram) -> AsyncIterator[BotApp]:
    async with running_bot(hook_settings, client) as app:
        await telegram.wait_call("setWebhook")
        yield app


async def _stored(settings: Settings) -> int:
    async with session_scope(settings) as session:
        return int((await session.exec(select(func.count()).select_from(TelegramUpdate))).one())


def _post(http: httpx.AsyncClient, update: dict[str, Any], secret: str | None) -> Any:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return http.post("/webhook/telegram", json=update, headers=headers)


async def test_the_bot_registers_its_webhook_with_the_secret(
    telegram: FakeTelegram, hook_bot: BotApp
) -> None:
    assert telegram.webhook is not None
    assert telegram.webhook["url"] == URL and telegram.webhook["secret_token"] == SECRET
    assert telegram.polls == 0, "no polling in webhook mode"
    [menu] = [c.params["menu_button"] for c in telegram.of("setChatMenuButton")][-1:]
    assert menu["type"] == "web_app" and menu["web_app"]["url"] == "https://goalflow.example/webapp"


async def test_missing_or_wrong_secret_is_401_and_nothing_is_stored(
    hook_settings: Settings, hook_api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    update = telegram.message_update(telegram.user(ALICE), "/help")
    before = await _stored(hook_settings)
    for secret in (None, "wrong", SECRET + "x", ""):
        response = await _post(hook_api, update, secret)
        assert response.status_code == 401, (secret, response.text)
        assert response.json()["detail"] == "missing or wrong X-Telegram-Bot-Api-Secret-Token"
    assert await _stored(hook_settings) == before


async def test_a_good_update_reaches_the_dispatcher_once(
    hook_settings: Settings, hook_api: httpx.AsyncClient, telegram: FakeTelegram, hook_bot: BotApp
) -> None:
    update = telegram.message_update(telegram.user(ALICE, "Alice"), "/help")
    mark = len(telegram.calls)
    response = await _post(hook_api, update, SECRET)
    assert response.status_code == 200 and response.json() == {}
    again = await _post(hook_api, update, SECRET)  # Telegram redelivering it
    assert again.status_code == 200
    reply = await telegram.wait_for(
        lambda: next(
            (c for c in telegram.calls[mark:] if c.method == "sendMessage" and c.params["chat_id"] == ALICE),
            None,
        ),
        what="the /help answer",
    )
    assert "/goal" in reply.params["text"]
    async with session_scope(hook_settings) as session:
        row = await session.get(TelegramUpdate, update["update_id"])
    assert row is not None and row.taken
    # One more update, handled after the first: a duplicate /help answer would have come by then.
    later = telegram.message_update(telegram.user(ALICE, "Alice"), "/start")
    assert (await _post(hook_api, later, SECRET)).status_code == 200
    await telegram.wait_for(
        lambda: any("runs your goals" in c.params.get("text", "") for c in telegram.calls[mark:]),
        what="/start",
    )
    answers = [c for c in telegram.calls[mark:] if c.method == "sendMessage" and "/goal" in c.params["text"]]
    assert len([a for a in answers if "Commands" in a.params["text"]]) == 1


async def test_a_stranger_is_refused_in_the_webhook_answer_and_nothing_is_stored(
    hook_settings: Settings, hook_api: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    before = await _stored(hook_settings)
    message = telegram.message_update(telegram.user(STRANGER), "/goal take over")
    response = await _post(hook_api, message, SECRET)
    assert response.status_code == 200
    assert response.json() == {"method": "sendMessage", "chat_id": STRANGER, "text": REFUSAL}

    query = {
        "update_id": message["update_id"] + 1,
        "callback_query": {
            "id": "cb-1",
            "from": telegram.user(STRANGER),
            "chat_instance": "x",
            "data": "ap:whatever:1",
        },
    }
    response = await _post(hook_api, query, SECRET)
    assert response.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": "cb-1",
        "text": REFUSAL,
        "show_alert": True,
    }
    assert await _stored(hook_settings) == before


async def test_without_a_webhook_url_the_route_is_404(api: httpx.AsyncClient, telegram: FakeTelegram) -> None:
    response = await _post(api, telegram.message_update(telegram.user(ALICE), "/help"), SECRET)
    assert response.status_code == 404
