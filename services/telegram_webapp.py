"""Telegram Web App requests: who is asking, from the `initData` Telegram signed.

Telegram signs the Web App's launch parameters with a key derived from the bot token (HMAC-SHA256
of the sorted fields under HMAC("WebAppData", token)); aiogram checks that signature. On top, the
data must be fresh (`auth_date` within TELEGRAM_WEBAPP_MAX_AGE_S) and the user allowed.
"""

from datetime import UTC, datetime

from aiogram.utils.web_app import WebAppUser, safe_parse_webapp_init_data

from core.settings import Settings
from services.telegram_access import is_allowed


class InitDataRefused(Exception):
    """The request cannot be trusted (401) or comes from someone not allowed (403)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


def verify(settings: Settings, init_data: str | None, *, now: datetime | None = None) -> WebAppUser:
    """The signed-in Telegram user, or InitDataRefused saying why not."""
    if settings.telegram_bot_token is None:
        raise InitDataRefused("the Telegram bot is not configured")
    if not init_data:
        raise InitDataRefused("missing Telegram initData")
    try:
        data = safe_parse_webapp_init_data(settings.telegram_bot_token.get_secret_value(), init_data)
    except ValueError:
        raise InitDataRefused("initData signature is invalid") from None
    age = (now or datetime.now(UTC)) - data.auth_date.astimezone(UTC)
    if age.total_seconds() > settings.telegram_webapp_max_age_s:
        raise InitDataRefused("initData has expired; reopen the Web App")
    if data.user is None:
        raise InitDataRefused("initData names no user")
    if not is_allowed(settings, data.user.id):
        raise InitDataRefused("this Telegram user may not use goalflow", forbidden=True)
    return data.user
