"""`POST /webhook/telegram`: Telegram's updates when TELEGRAM_WEBHOOK_URL is set.

The secret Telegram echoes in `X-Telegram-Bot-Api-Secret-Token` is checked first (401 without it
or with a wrong one). An update from someone not allowed is refused in the answer itself (Telegram
runs a method returned from a webhook), so nothing of theirs is stored or run; any other update is
stored for the bot's dispatcher (`services.telegram_inbox`), and Telegram gets its answer at once.
"""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, status

from api.deps import SessionDep, SettingsDep
from api.errors import errors
from services import telegram_inbox
from services.telegram_access import REFUSAL, is_allowed, sender

router = APIRouter(tags=["telegram"])


@router.post("/webhook/telegram", responses=errors(401, 404))
async def telegram_webhook(
    settings: SettingsDep,
    session: SessionDep,
    update: Annotated[dict[str, Any], Body()],
    secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
) -> dict[str, Any]:
    """Accept one update for the bot; a stranger is answered with a refusal and nothing else."""
    expected = settings.telegram_webhook_secret
    if settings.telegram_webhook_url is None or expected is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the Telegram webhook is not enabled")
    if secret is None or not secrets.compare_digest(secret.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-Telegram-Bot-Api-Secret-Token")
    if not isinstance(update.get("update_id"), int):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "an update needs an integer update_id")
    user_id, chat_id, query_id = sender(update)
    if not is_allowed(settings, user_id):
        if query_id is not None:
            return {
                "method": "answerCallbackQuery",
                "callback_query_id": query_id,
                "text": REFUSAL,
                "show_alert": True,
            }
        if "message" in update and chat_id is not None:
            return {"method": "sendMessage", "chat_id": chat_id, "text": REFUSAL}
        return {}
    await telegram_inbox.accept(session, update)
    return {}
