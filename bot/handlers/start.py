"""/start and /help."""

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot import keyboards, texts
from core.settings import Settings


async def start(message: Message, settings: Settings) -> None:
    """Greeting, with the Web App button when one is configured."""
    await message.answer(texts.start(), reply_markup=keyboards.web_app(settings.telegram_webapp_page))


async def help_command(message: Message) -> None:
    await message.answer(texts.help_text())


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="start")
    found.message.register(start, CommandStart())
    found.message.register(help_command, Command("help"))
    return found
