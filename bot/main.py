"""`python -m bot.main`: the Telegram bot (a child of `make run` when TELEGRAM_BOT_TOKEN is set)."""

import asyncio
import signal
import sys

from pydantic import ValidationError

from core.logs import setup_logging
from core.settings import Settings, describe_settings_error, get_settings


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM (what the supervisor and `docker stop` send)."""
    from bot.app import BotApp  # the heavy imports, once the settings are known to be usable
    from core.temporal import connect

    temporal = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await BotApp(settings, temporal).run(stop)


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        sys.exit("\n".join(f"[bot] bad setting {line}" for line in describe_settings_error(exc)))
    if settings.telegram_bot_token is None:
        sys.exit("[bot] TELEGRAM_BOT_TOKEN is not set")
    setup_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
