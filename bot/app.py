"""The running bot: updates in (polling, or the webhook's inbox), runs followed, prompts sent.

With TELEGRAM_WEBHOOK_URL the API receives Telegram's updates (`POST /webhook/telegram`) and
stores them (`services.telegram_inbox`); this process feeds each to the same dispatcher polling
would. The API never imports the bot, and a bot restart loses no update.
"""

import asyncio
import contextlib
import logging
from typing import Any

from temporalio.client import Client

from bot.approvals import ApprovalWatcher
from bot.dispatcher import build_bot, build_dispatcher, configure
from bot.progress import ProgressFollower
from core.db import session_scope
from core.settings import Settings
from services import telegram_inbox

log = logging.getLogger("goalflow.bot")

INBOX_POLL_S = 0.3
PRUNE_EVERY_S = 3600.0


class BotApp:
    def __init__(self, settings: Settings, temporal: Client, *, polling_timeout: int = 10) -> None:
        self.settings = settings
        self.bot = build_bot(settings)
        self.approvals = ApprovalWatcher(self.bot, settings, temporal)
        self.progress = ProgressFollower(self.bot, settings, temporal, on_execution=self.approvals.watch)
        self.dp = build_dispatcher(settings, temporal, self.progress)
        self._polling_timeout = polling_timeout
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        me = await self.bot.get_me()
        await configure(self.bot, self.dp, self.settings)
        mode = "webhook inbox" if self.settings.telegram_webhook_url else "polling"
        log.info("bot @%s up (%s)", me.username, mode)
        background = [
            asyncio.create_task(self.approvals.run(), name="approvals"),
            asyncio.create_task(self.progress.resume_all(), name="progress-resume"),
        ]
        if self.settings.telegram_webhook_url:
            background.append(asyncio.create_task(self._inbox(), name="inbox"))
        else:
            background.append(
                asyncio.create_task(
                    self.dp.start_polling(
                        self.bot,
                        handle_signals=False,
                        close_bot_session=False,
                        polling_timeout=self._polling_timeout,
                    ),
                    name="polling",
                )
            )
        stopped = asyncio.create_task(stop.wait())
        try:
            pending: set[asyncio.Task[Any]] = {stopped, *background}
            while stopped in pending:  # until told to stop, or a part fails for good
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not stopped and not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            stopped.cancel()
            if not self.settings.telegram_webhook_url:
                with contextlib.suppress(RuntimeError):  # polling may not have started
                    await self.dp.stop_polling()
            for task in [*background, *self._tasks]:
                task.cancel()
            await asyncio.gather(*background, *self._tasks, return_exceptions=True)
            await self.approvals.stop()
            await self.progress.stop()
            await self.bot.session.close()

    async def _inbox(self) -> None:
        """Feed stored webhook updates to the dispatcher, each in its own task (as polling does)."""
        loop = asyncio.get_running_loop()
        pruned = 0.0
        while True:
            async with session_scope(self.settings) as session:
                updates = await telegram_inbox.take(session)
                if loop.time() - pruned > PRUNE_EVERY_S:
                    await telegram_inbox.prune(session)
                    pruned = loop.time()
            for payload in updates:
                task = asyncio.create_task(self.dp.feed_raw_update(self.bot, payload))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not updates:
                await asyncio.sleep(INBOX_POLL_S)
