"""`python -m bot.main`, as `make run` and compose start it: it serves, and SIGTERM stops it cleanly."""

import asyncio
import os
import signal
import sys

from pydantic import SecretStr

from core.settings import Settings
from tests.bot.conftest import ALICE, Chat
from tests.conftest import ROOT
from tests.fakes.telegram_server import FakeTelegram


async def test_the_bot_process_answers_and_stops_on_sigterm(
    settings: Settings, telegram: FakeTelegram, worker: None
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_BASE": telegram.base_url,
        "TELEGRAM_ALLOWED_USER_IDS": str(ALICE),
        "LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.main", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await telegram.wait_call("deleteWebhook", within=60)
        alice = Chat(telegram, ALICE, "Alice")
        since = await alice.say("/help")
        assert "/goal" in (await alice.reply(since)).params["text"]
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert "bot @goalflow_bot up (polling)" in stderr.decode()
    assert telegram.token not in stderr.decode() and str(SecretStr(telegram.token)) != telegram.token


async def test_without_a_token_the_bot_says_so_and_exits(settings: Settings) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TELEGRAM_BOT_TOKEN": ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.main", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    assert process.returncode == 1
    assert "TELEGRAM_BOT_TOKEN is not set" in stderr.decode()
