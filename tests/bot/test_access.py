"""Only TELEGRAM_ALLOWED_USER_IDS act: a stranger gets one polite refusal, nothing runs or is stored."""

import copy

import httpx
import pytest_asyncio
from sqlalchemy import func
from sqlmodel import select

from bot.app import BotApp
from core.db import session_scope
from core.models import Goal, TelegramApproval, TelegramProgress, TelegramUpdate
from core.settings import Settings
from services.telegram_access import REFUSAL
from tests.api.dag_helpers import make_dag, start, wait_node
from tests.bot.conftest import ALICE, STRANGER, Chat, buttons
from tests.bot.test_approvals import GATED, wait_prompt
from tests.fakes.telegram_server import FakeTelegram


@pytest_asyncio.fixture
async def stranger(telegram: FakeTelegram, bot: BotApp) -> Chat:
    return Chat(telegram, STRANGER, "Mallory")


async def _counts(settings: Settings) -> dict[str, int]:
    async with session_scope(settings) as session:
        counts = {}
        for table in (Goal, TelegramProgress, TelegramApproval, TelegramUpdate):
            counts[table.__name__] = (await session.exec(select(func.count()).select_from(table))).one()
        return counts


async def test_a_strangers_messages_get_one_refusal_and_change_nothing(
    settings: Settings, telegram: FakeTelegram, stranger: Chat
) -> None:
    before = await _counts(settings)
    for text in ("/goal Delete everything", "/run 1", "/goals", "just some text"):
        since = await stranger.say(text)
        reply = await stranger.reply(since)
        assert reply.params["text"] == REFUSAL
    alice = Chat(telegram, ALICE, "Alice")  # an allowed user right after: the bot is alive
    since = await alice.say("/help")
    await alice.reply(since)
    assert len(stranger.replies(0)) == 4  # one refusal per message, nothing else
    assert await _counts(settings) == before


async def test_a_strangers_button_press_is_refused_and_the_node_keeps_waiting(
    api: httpx.AsyncClient, settings: Settings, telegram: FakeTelegram, stranger: Chat
) -> None:
    dag = await make_dag(api, GATED)
    execution_id = await start(api, dag["id"])
    prompt = await wait_prompt(telegram, ALICE, execution_id)
    approve, _ = buttons(prompt)

    since = await stranger.press(prompt["message_id"], approve["callback_data"], chat_id=ALICE)
    assert await stranger.answered(since) == REFUSAL
    [refusal] = telegram.of("answerCallbackQuery", text=REFUSAL)
    assert refusal.params.get("show_alert") in (True, "true")
    await wait_node(api, execution_id, "publish", "waiting_approval")
    shown = copy.deepcopy(telegram.messages[(ALICE, prompt["message_id"])])
    assert buttons(shown) == buttons(prompt)  # still open
    async with session_scope(settings) as session:
        row = (
            await session.exec(select(TelegramApproval).where(TelegramApproval.execution_id == execution_id))
        ).one()
    assert row.decision is None

    alice = Chat(telegram, ALICE, "Alice")
    since = await alice.press(prompt["message_id"], approve["callback_data"])
    assert await alice.answered(since) == "Approved."
