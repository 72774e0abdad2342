"""Plain text → the chat intake's message → a task; the bot answers what it understood.
/tasks and /done work on the same tasks."""

import uuid

import httpx
import pytest_asyncio
from sqlalchemy import func
from sqlmodel import select

from bot.app import BotApp
from core.db import session_scope
from core.models import Message, TodoTask
from core.settings import Settings
from tests.api.intake_helpers import FakeIntake, classification, setup_intake
from tests.bot.conftest import ALICE, STRANGER, Chat, buttons
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram


@pytest_asyncio.fixture(scope="module")
async def intake(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> FakeIntake:
    return await setup_intake(api, fake_llm)


@pytest_asyncio.fixture
async def alice(telegram: FakeTelegram, bot: BotApp) -> Chat:
    return Chat(telegram, ALICE, "Alice")


async def test_plain_text_becomes_a_message_and_a_task_and_the_bot_says_what_it_understood(
    api: httpx.AsyncClient, settings: Settings, telegram: FakeTelegram, alice: Chat, intake: FakeIntake
) -> None:
    text = f"Buy milk tomorrow at 5pm for 2.50 €, remind Anna ({uuid.uuid4().hex[:6]})"
    intake.script(
        text,
        classification=classification("Buy milk", "shopping", is_task=True),
        entities={
            "people": ["Anna"],
            "dates": ["tomorrow at 5pm"],
            "amounts": [{"value": 2.5, "currency": "€"}],
        },
    )
    since = await alice.say(text)
    ack = await alice.reply(since)
    assert "Got it" in ack.params["text"]
    understood = await alice.reply(
        since, method="editMessageText", where=lambda c: "shopping" in c.params["text"]
    )
    shown = understood.params["text"]
    assert "Buy milk" in shown and "Anna" in shown and "2.5 EUR" in shown and "Task created" in shown

    async with session_scope(settings) as session:
        message = (await session.exec(select(Message).where(Message.text == text))).one()
        task = (await session.exec(select(TodoTask).where(TodoTask.message_id == message.id))).one()
    assert (message.source, message.sender_id, message.chat_id) == ("telegram", str(ALICE), str(ALICE))
    assert f"#{task.id}" in shown and task.title == "Buy milk"

    since = await alice.say("/tasks")
    listed = await alice.reply(since)
    assert f"#{task.id}" in listed.params["text"] and "Buy milk" in listed.params["text"]
    assert buttons(listed.params) == [] or all("callback_data" in b for b in buttons(listed.params))

    since = await alice.say(f"/done {task.id}")
    assert "Done" in (await alice.reply(since)).params["text"]
    assert (await api.get(f"/api/v1/tasks/{task.id}")).json()["status"] == "done"
    since = await alice.say(f"/done {task.id}")
    assert "already done" in (await alice.reply(since)).params["text"]


async def test_a_note_is_filed_without_a_task_and_a_stranger_files_nothing(
    settings: Settings, telegram: FakeTelegram, alice: Chat, intake: FakeIntake
) -> None:
    text = f"FYI the wifi is back ({uuid.uuid4().hex[:6]})"
    intake.script(text, classification=classification("Wifi is back", "information", is_task=False))
    since = await alice.say(text)
    understood = await alice.reply(
        since, method="editMessageText", where=lambda c: "information" in c.params["text"]
    )
    assert "Not a task" in understood.params["text"]

    async with session_scope(settings) as session:
        before = (await session.exec(select(func.count()).select_from(Message))).one()
    stranger = Chat(telegram, STRANGER, "Mallory")
    since = await stranger.say("Transfer 1000 € to Mallory today")
    await stranger.reply(since)
    since = await alice.say("/help")  # handled after the stranger's message
    await alice.reply(since)
    async with session_scope(settings) as session:
        assert (await session.exec(select(func.count()).select_from(Message))).one() == before


async def test_an_unknown_command_says_so(alice: Chat) -> None:
    since = await alice.say("/frobnicate now")
    assert "I do not know /frobnicate" in (await alice.reply(since)).params["text"]
