"""How the bot is started: a supervised child of `make run` when a token is set, the compose `bot`
service, and its settings (a webhook needs its secret; a blank token is no token)."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.launcher import children
from core.settings import Settings
from tests.test_compose import SECRETS, _config


@pytest.mark.parametrize(
    ("token", "expected"), [("123:abc", True), (None, False), ("", False), ("  ", False)]
)
def test_make_run_supervises_the_bot_only_with_a_token(token: str | None, expected: bool) -> None:
    settings = Settings(llm_provider="none", telegram_bot_token=token)
    parts = {child.name: child for child in children(settings)}
    assert ("bot" in parts) is expected
    if expected:
        assert list(parts["bot"].argv)[-2:] == ["-m", "bot.main"]
        assert parts["bot"].requires == parts["worker"].requires  # restarted only into a live Temporal


def test_the_compose_bot_service_runs_the_bot_with_the_telegram_settings(tmp_path: Path) -> None:
    env = {**SECRETS, "TELEGRAM_BOT_TOKEN": "123:abc", "TELEGRAM_ALLOWED_USER_IDS": "1001,1002"}
    bot = _config(tmp_path, "--profile", "bot", env=env)["services"]["bot"]
    assert bot["command"] == ["python", "-m", "bot.main"]
    assert bot["environment"]["TELEGRAM_BOT_TOKEN"] == "123:abc"
    assert bot["environment"]["TELEGRAM_ALLOWED_USER_IDS"] == "1001,1002"
    assert bot["depends_on"]["api"]["condition"] == "service_healthy"
    assert "bot" not in _config(tmp_path, env=env)["services"], "opt-in: --profile bot"


def test_a_webhook_needs_its_secret_and_derives_the_web_app_url() -> None:
    with pytest.raises(ValidationError, match="TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET"):
        Settings(telegram_webhook_url="https://bot.example.com/webhook/telegram")
    settings = Settings(
        telegram_webhook_url="https://bot.example.com/webhook/telegram", telegram_webhook_secret="s3cret"
    )
    assert settings.telegram_webapp_page == "https://bot.example.com/webapp"
    assert (
        Settings(telegram_webapp_url="https://x.example/app").telegram_webapp_page == "https://x.example/app"
    )
    assert Settings().telegram_webapp_page is None
