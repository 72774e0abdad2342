"""Plain text: the chat intake (issue 10) files it as a message; the bot says what it understood.

The message goes through `services.messages.submit_message`, the same entry point as
`POST /messages`; the answer is edited in once MessageWorkflow has classified it (category,
urgency, people, dates, amounts, links, and the task it made), or says it is still waiting.
"""

import asyncio

from aiogram import F, Router
from aiogram.types import Message
from pydantic import ValidationError
from temporalio.client import Client

from bot import texts
from core.db import session_scope
from core.settings import Settings
from services import messages

SOURCE = "telegram"


async def plain_text(message: Message, settings: Settings, temporal: Client) -> None:
    if not message.text or message.from_user is None:
        return
    try:
        async with session_scope(settings) as session:
            submitted = await messages.submit_message(
                session,
                temporal,
                settings,
                text=message.text,
                source=SOURCE,
                sender_id=message.from_user.id,
                chat_id=message.chat.id,
                sent_at=message.date,
            )
    except ValidationError:
        await message.answer("I cannot file that message (empty, or longer than 4096 characters).")
        return
    ack = await message.answer(texts.intake_received(submitted.id))
    try:
        async with asyncio.timeout(settings.wait_timeout_s):
            await messages.message_outcome(temporal, submitted.id)
    except TimeoutError:
        pass  # still waiting (no usable provider, say): what it is now is said below
    async with session_scope(settings) as session:
        public = await messages.get_message(session, submitted.id)
    await ack.edit_text(texts.intake_understood(public))


async def unknown_command(message: Message) -> None:
    command = (message.text or "").split()[0]
    await message.answer(f"I do not know {texts.esc(command)}; /help lists what I understand.")


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="intake")
    found.message.register(unknown_command, F.text.startswith("/"))
    found.message.register(plain_text, F.text)
    return found
