"""Inline keyboards and their callback data (Telegram allows 64 bytes: ids are short and opaque)."""

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo


class PageCb(CallbackData, prefix="pg"):
    """A list page: which list and from where."""

    kind: str
    offset: int


class ApprovalCb(CallbackData, prefix="ap"):
    """A decision on one approval prompt, by its opaque id (`services.telegram_approvals`)."""

    id: str
    ok: bool


def pager(kind: str, *, offset: int, page: int, has_next: bool) -> InlineKeyboardMarkup | None:
    """◀ / ▶ buttons for a paged list, or none when everything fits on one page."""
    row = []
    if offset > 0:
        row.append(
            InlineKeyboardButton(
                text="◀ Newer", callback_data=PageCb(kind=kind, offset=max(0, offset - page)).pack()
            )
        )
    if has_next:
        row.append(
            InlineKeyboardButton(text="Older ▶", callback_data=PageCb(kind=kind, offset=offset + page).pack())
        )
    return InlineKeyboardMarkup(inline_keyboard=[row]) if row else None


def approval(approval_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text="✅ Approve", callback_data=ApprovalCb(id=approval_id, ok=True).pack()
                ),
                InlineKeyboardButton(
                    text="❌ Reject", callback_data=ApprovalCb(id=approval_id, ok=False).pack()
                ),
            ]
        ]
    )


def web_app(url: str | None) -> InlineKeyboardMarkup | None:
    if not url:
        return None
    button = InlineKeyboardButton(text="Open runs", web_app=WebAppInfo(url=url))
    return InlineKeyboardMarkup(inline_keyboard=[[button]])
