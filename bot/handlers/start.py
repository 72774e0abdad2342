"""/start and /help."""

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot import keyboards, texts
from core.settings import Settings

router = Router(name="start")


@router.message(CommandStart())
async def start(message: Message, settings: Settings) -> None:
    """Greeting, with the Web App button when one is configured."""
    await message.answer(texts.start(), reply_markup=keyboards.web_app(settings.telegram_webapp_page))


@router.message(Command("help"))
async def help_command(message: Message) -> None:
    await message.answer(texts.help_text())
