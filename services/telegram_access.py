"""Who may use goalflow through Telegram: only TELEGRAM_ALLOWED_USER_IDS.

The bot's middleware and the API's webhook ask the same question here, so a stranger is refused
the same way whichever transport brought the update, and nothing of theirs runs or is stored.
"""

from typing import Any

from core.settings import Settings

REFUSAL = "Sorry, this bot only works for the people it was set up for."


def is_allowed(settings: Settings, user_id: int | None) -> bool:
    """Whether a Telegram user may act (no user, as in a channel post, may not)."""
    return user_id is not None and user_id in settings.telegram_allowed_user_ids


def sender(update: dict[str, Any]) -> tuple[int | None, int | None, str | None]:
    """(user id, chat id, callback query id) of a raw update, whatever kind it is."""
    for key, value in update.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        user = value.get("from") or value.get("user") or {}
        chat = value.get("chat") or (value.get("message") or {}).get("chat") or {}
        query_id = value.get("id") if key == "callback_query" else None
        return user.get("id"), chat.get("id"), query_id
    return None, None, None
