"""The Bot and its Dispatcher, built the same way for polling and for webhook updates."""

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommand, MenuButtonCommands, MenuButtonWebApp, WebAppInfo
from temporalio.client import Client

from bot import texts
from bot.handlers import routers
from bot.middlewares import AllowListMiddleware
from bot.progress import ProgressFollower
from core.settings import Settings


def build_bot(settings: Settings) -> Bot:
    """A Bot on Telegram's servers, or on TELEGRAM_API_BASE (a local or self-hosted Bot API)."""
    assert settings.telegram_bot_token is not None, "TELEGRAM_BOT_TOKEN is not set"
    session = None
    if settings.telegram_api_base:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return Bot(
        settings.telegram_bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def build_dispatcher(settings: Settings, temporal: Client, progress: ProgressFollower) -> Dispatcher:
    """Every router, behind the allow-list; handlers get `settings`, `temporal` and `progress`."""
    dp = Dispatcher(settings=settings, temporal=temporal, progress=progress)
    dp.update.outer_middleware(AllowListMiddleware(settings))
    dp.include_routers(*routers())
    return dp


async def configure(bot: Bot, dp: Dispatcher, settings: Settings) -> None:
    """The command menu, the Web App menu button, and where updates come from."""
    await bot.set_my_commands([BotCommand(command=name, description=text) for name, text in texts.COMMANDS])
    page = settings.telegram_webapp_page
    if page:
        await bot.set_chat_menu_button(
            menu_button=MenuButtonWebApp(text="Runs", web_app=WebAppInfo(url=page))
        )
    else:
        await bot.set_chat_menu_button(menu_button=MenuButtonCommands())
    if settings.telegram_webhook_url:
        assert settings.telegram_webhook_secret is not None  # settings refuse a webhook without one
        await bot.set_webhook(
            settings.telegram_webhook_url,
            secret_token=settings.telegram_webhook_secret.get_secret_value(),
            allowed_updates=dp.resolve_used_update_types(),
        )
    else:
        await bot.delete_webhook()
