"""Paged lists (/goals, /runs, /agents, /tasks): one page per message, ◀ ▶ buttons edit it."""

import contextlib
from collections.abc import Awaitable, Callable

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from temporalio.client import Client

from bot import texts
from bot.keyboards import PageCb, pager
from core.db import session_scope
from core.settings import Settings
from services import agents, goals, runs

PAGE = 8

Lister = Callable[[Settings, Client, int], Awaitable[tuple[list[str], bool]]]
"""(settings, Temporal, offset) → (lines of one page, whether more follow)."""


async def _goals(settings: Settings, temporal: Client, offset: int) -> tuple[list[str], bool]:
    async with session_scope(settings) as session:
        found = await goals.list_goals(session, status=None, limit=PAGE + 1, offset=offset)
    lines = []
    for goal in found[:PAGE]:
        schedule = f" · ⏰ <code>{texts.esc(goal.schedule)}</code>" if goal.schedule else ""
        lines.append(f"{texts.icon(goal.status)} <b>#{goal.id}</b> {texts.esc(goal.title)}{schedule}")
    return lines, len(found) > PAGE


async def _runs(settings: Settings, temporal: Client, offset: int) -> tuple[list[str], bool]:
    found = await runs.list_runs(temporal, settings, goal_id=None, status=None, limit=PAGE + 1, offset=offset)
    lines = [
        f"{texts.icon(run.status)} <code>{texts.esc(run.id)}</code> {texts.esc(run.status)}"
        f" · {texts.when(run.started_at)}"
        for run in found[:PAGE]
    ]
    return lines, len(found) > PAGE


async def _agents(settings: Settings, temporal: Client, offset: int) -> tuple[list[str], bool]:
    async with session_scope(settings) as session:
        found = await agents.list_agents(session, name=None, active=True, limit=PAGE + 1, offset=offset)
    lines = [
        f"🤖 <b>{texts.esc(a.name)}</b> v{a.version} · {texts.esc(a.model)}"
        + (f" · tools: {texts.esc(', '.join(a.tools))}" if a.tools else "")
        for a in found[:PAGE]
    ]
    return lines, len(found) > PAGE


LISTS: dict[str, tuple[str, str, Lister]] = {
    "goals": ("🎯 <b>Goals</b>", "No goals yet: /goal <text> creates one.", _goals),
    "runs": ("🏃 <b>Runs</b> (newest first; /status &lt;id&gt; for one)", "No runs yet.", _runs),
    "agents": ("🤖 <b>Active agents</b> (/ask &lt;agent&gt; &lt;prompt&gt;)", "No active agents.", _agents),
}


def register(kind: str, title: str, empty: str, lister: Lister) -> None:
    """Add a list (another feature's, e.g. tasks) to the pager."""
    LISTS[kind] = (title, empty, lister)


async def page(
    settings: Settings, temporal: Client, kind: str, offset: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    title, empty, lister = LISTS[kind]
    lines, more = await lister(settings, temporal, offset)
    if not lines:
        return (f"{title}\n{empty}" if offset == 0 else f"{title}\nNothing more."), pager(
            kind, offset=offset, page=PAGE, has_next=False
        )
    first = offset + 1
    body = "\n".join(lines)
    return f"{title} {first}-{offset + len(lines)}\n{body}", pager(
        kind, offset=offset, page=PAGE, has_next=more
    )


async def send_page(message: Message, settings: Settings, temporal: Client, kind: str) -> None:
    text, markup = await page(settings, temporal, kind, 0)
    await message.answer(text, reply_markup=markup)


async def goals_command(message: Message, settings: Settings, temporal: Client) -> None:
    await send_page(message, settings, temporal, "goals")


async def runs_command(message: Message, settings: Settings, temporal: Client) -> None:
    await send_page(message, settings, temporal, "runs")


async def agents_command(message: Message, settings: Settings, temporal: Client) -> None:
    await send_page(message, settings, temporal, "agents")


async def turn_page(
    query: CallbackQuery, callback_data: PageCb, settings: Settings, temporal: Client
) -> None:
    """◀ / ▶: the same message shows another page."""
    if callback_data.kind not in LISTS:
        await query.answer("This list is gone.")
        return
    text, markup = await page(settings, temporal, callback_data.kind, max(0, callback_data.offset))
    if query.message is not None and isinstance(query.message, Message):
        with contextlib.suppress(TelegramBadRequest):  # the same page again: nothing to change
            await query.message.edit_text(text, reply_markup=markup)
    await query.answer()


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="lists")
    found.message.register(goals_command, Command("goals"))
    found.message.register(runs_command, Command("runs"))
    found.message.register(agents_command, Command("agents"))
    found.callback_query.register(turn_page, PageCb.filter())
    return found
