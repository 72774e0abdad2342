"""`python -m bot.main`: the Telegram bot (a child of `make run` when TELEGRAM_BOT_TOKEN is set)."""

import asyncio
import signal
import sys

from pydantic import ValidationError

from bot.app import BotApp
from core.logs import setup_logging
from core.settings import describe_settings_error, get_settings
from core.temporal import connect


async def serve() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    if settings.telegram_bot_token is None:
        sys.exit("[bot] TELEGRAM_BOT_TOKEN is not set")
    temporal = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await BotApp(settings, temporal).run(stop)


def main() -> None:
    try:
        get_settings()
    except ValidationError as exc:
        sys.exit("\n".join(f"[bot] bad setting {line}" for line in describe_settings_error(exc)))
    asyncio.run(serve())


if __name__ == "__main__":
    main()
