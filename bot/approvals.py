"""Approve / Reject prompts for every node that waits for a person, whoever started its run.

The watcher follows the event stream of each running DAG execution on this task queue (found
through Temporal visibility, or told by the progress follower the moment a Telegram run plans
its DAG), from the offset it saved for that execution. A `node_waiting_approval` event becomes
one prompt: to the chat that started the run, otherwise to TELEGRAM_NOTIFY_CHAT_IDS or else every
allowed user. A decision made elsewhere (REST, CLI) or a wait that ended (run cancelled, timed
out) edits the prompts to say so and removes their buttons. A node whose approval deadline
passed (`node_approval_timed_out`) has its prompts closed with what the deadline decided.

An execution paused at its token budget (`execution_budget_reached`) gets a prompt with "Raise
budget x2" and "Stop" buttons (`BudgetCb`, handled in `bot/handlers/budget.py`), claimed once like
an approval; a raise made elsewhere (`execution_budget_raised`) closes it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from bot import keyboards, texts
from bot.shield import to_the_end
from core.db import session_scope
from core.errors import Conflict, Invalid, NotFound
from core.models import TelegramApproval
from core.settings import Settings
from services import dag_event_stream, telegram_approvals, telegram_progress
from services.dag_event_stream import Gap
from services.telegram_approvals import BUDGET_WAIT, ELSEWHERE, GONE, RAISED, STOPPED

log = logging.getLogger("goalflow.bot.approvals")

SCAN_S = 2.0
"""How often visibility is asked for running DAG executions."""
STREAM_POLL = timedelta(seconds=1)
"""Pause between stream polls once caught up (each poll is an update in the execution's history)."""
SAVE_EVERY_S = 2.0
"""An offset with nothing to act on is saved at most this often (re-reading a few events after a
restart is harmless: prompts are keyed by their event)."""
RETRY_S = 5.0


class BudgetCb(CallbackData, prefix="bg"):
    """A decision on one budget prompt, by its opaque id: raise the budget (`more`) or stop."""

    id: str
    more: bool


def budget_keyboard(approval_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text="💰 Raise budget ×2",  # noqa: RUF001 (the multiplication sign is meant)
                    callback_data=BudgetCb(id=approval_id, more=True).pack(),
                ),
                InlineKeyboardButton(
                    text="⏹ Stop", callback_data=BudgetCb(id=approval_id, more=False).pack()
                ),
            ]
        ]
    )


def budget_text(*, execution_id: str, budget: int | None, used: int, run: str | None) -> str:
    lines = ["💰 <b>Token budget reached</b>", f"<code>{texts.esc(execution_id)}</code>"]
    if run:
        lines.append(f"run <code>{texts.esc(run)}</code>")
    lines.append(
        f"used {used:,} of {budget or 0:,} tokens; no further node starts until the budget is raised"
    )
    return "\n".join(lines)


def decided_text(row: TelegramApproval) -> str:
    """The prompt as decided: an approval's line from `texts.decided`, a budget prompt's here."""
    who, at = texts.esc(row.decided_by or "someone"), texts.when(row.decided_at)
    if row.decision == RAISED:
        return f"{row.text}\n\n💰 Budget raised by {who} at {at}"
    if row.decision == STOPPED:
        return f"{row.text}\n\n⏹ Stopped by {who} at {at}"
    return texts.decided(row.text, decision=row.decision or "", by=row.decided_by, at=row.decided_at)


_CLOSING = {
    "execution_succeeded": "succeeded",
    "execution_failed": "failed",
    "execution_cancelled": "cancelled",
}


async def show_decision(bot: Bot, row: TelegramApproval, *, pressed: tuple[int, int] | None = None) -> None:
    """Edit every copy of a prompt to say who decided and when; its buttons go. `pressed` is the
    message whose button was used (a press can come before the prompt's copies are recorded)."""
    if row.decision is None or not row.text:  # not sent yet: the sender shows it once recorded
        return
    text = decided_text(row)
    copies = [(chat_id, message_id) for chat_id, message_id in row.messages]
    if pressed is not None and pressed not in copies:
        copies.append(pressed)
    for chat_id, message_id in copies:
        try:
            await bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id, reply_markup=None)
        except TelegramBadRequest as exc:  # deleted meanwhile, or already shows it
            log.info("approval message %s/%s not edited: %s", chat_id, message_id, exc.message)


def pressed_message(query: CallbackQuery) -> tuple[int, int] | None:
    """The chat and message whose button was pressed, for `show_decision`."""
    message = query.message
    return (message.chat.id, message.message_id) if message is not None else None


async def deliver(
    bot: Bot,
    session: AsyncSession,
    query: CallbackQuery,
    claimed: TelegramApproval,
    act: Callable[[], Awaitable[object]],
) -> bool:
    """Carry out a claimed press (`act`: the same call as REST's). When the wait is over (decided
    elsewhere, the run moved on or is gone) the prompt is closed as gone and the press answered;
    any other failure undoes the claim, so a press may retry. True when `act` went through."""
    try:
        await act()
    except (Conflict, Invalid, NotFound):
        await telegram_approvals.release(session, claimed.id)
        gone = await telegram_approvals.claim(session, claimed.id, decision=GONE, by="the run moved on")
        if gone is not None:
            await show_decision(bot, gone, pressed=pressed_message(query))
        await query.answer(texts.ALREADY_DECIDED)
        return False
    except BaseException:
        await telegram_approvals.release(session, claimed.id)  # not delivered: a press may retry
        raise
    return True


class ApprovalWatcher:
    def __init__(self, bot: Bot, settings: Settings, temporal: Client) -> None:
        self.bot = bot
        self.settings = settings
        self.temporal = temporal
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    def watch(self, execution_id: str) -> None:
        """Follow an execution now (a run from Telegram just planned it)."""
        if execution_id not in self._tasks or self._tasks[execution_id].done():
            self._tasks[execution_id] = asyncio.create_task(
                self._follow(execution_id), name=f"approvals-{execution_id}"
            )

    async def run(self) -> None:
        """Scan for running executions until cancelled; prompts the bot stopped before sending
        are sent first."""
        await self._send_unsent()
        while True:
            try:
                await self._scan()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scanning for DAG executions failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SCAN_S)
            self._wake.clear()

    async def _scan(self) -> None:
        running = await telegram_approvals.running_executions(self.temporal, self.settings)
        async with session_scope(self.settings) as session:
            ids = set(running) | set(await telegram_approvals.open_watches(session))
            ids -= await telegram_approvals.closed_watches(session, sorted(ids))
        for execution_id in sorted(ids):
            self.watch(execution_id)
        for execution_id in [e for e, t in self._tasks.items() if t.done()]:
            del self._tasks[execution_id]

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    async def _send_unsent(self) -> None:
        async with session_scope(self.settings) as session:
            rows = await telegram_approvals.unsent(session)
        for row in rows:
            await self._prompt(row.execution_id, row.node_id, row.event_offset)

    # ------------------------------------------------------------------ one execution

    async def _follow(self, execution_id: str) -> None:
        while True:
            try:
                await self._read(execution_id)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following approvals of %s failed; again in %.0f s", execution_id, RETRY_S)
            await asyncio.sleep(RETRY_S)

    async def _read(self, execution_id: str) -> None:
        async with session_scope(self.settings) as session:
            offset = await telegram_approvals.watch_offset(session, execution_id)
        saved, saved_at = offset, time.monotonic()
        async for item in dag_event_stream.events(
            self.temporal, self.settings, execution_id, after=offset, poll_cooldown=STREAM_POLL
        ):
            if isinstance(item, Gap):
                offset = item.last
                continue
            offset, event = item
            acted = True
            if event.kind == "node_waiting_approval" and event.node_id:
                await self._prompt(execution_id, event.node_id, offset)
            elif event.kind == "execution_budget_reached":
                await self._prompt(execution_id, BUDGET_WAIT, offset)
            elif event.kind == "execution_budget_raised":
                await self._settle(execution_id, BUDGET_WAIT, ELSEWHERE, "raised via API or CLI")
            elif event.kind == "node_approval_timed_out" and event.node_id:
                await self._settle(execution_id, event.node_id, GONE, event.message)
            elif event.kind in ("node_approved", "node_rejected") and event.node_id:
                verb = "approved" if event.kind == "node_approved" else "rejected"
                await self._settle(execution_id, event.node_id, ELSEWHERE, f"{verb} via API or CLI")
            elif event.kind in _CLOSING:
                await self._settle(execution_id, None, GONE, f"run {_CLOSING[event.kind]}")
            else:
                acted = False
            if acted or time.monotonic() - saved_at > SAVE_EVERY_S:
                async with session_scope(self.settings) as session:
                    await telegram_approvals.save_watch(session, execution_id, offset=offset)
                saved, saved_at = offset, time.monotonic()
        await self._settle(execution_id, None, GONE, "run ended")
        async with session_scope(self.settings) as session:
            await telegram_approvals.save_watch(session, execution_id, offset=max(offset, saved), closed=True)

    async def _prompt(self, execution_id: str, node_id: str, offset: int) -> None:
        """Send the prompt for one wait, unless it went out already or the wait is over; sending
        and recording the copies sent run to their end together."""
        await to_the_end(self._send_prompt(execution_id, node_id, offset))

    async def _send_prompt(self, execution_id: str, node_id: str, offset: int) -> None:
        async with session_scope(self.settings) as session:
            row = await telegram_approvals.open_for_event(
                session, execution_id=execution_id, node_id=node_id, offset=offset
            )
        if row.notified or row.decision is not None:
            return
        if node_id == BUDGET_WAIT:
            waiting, budget, used = await telegram_approvals.budget_wait(
                self.temporal, self.settings, execution_id
            )
            preview = ""
        else:
            waiting, preview = await telegram_approvals.waiting_node(
                self.temporal, self.settings, execution_id, node_id
            )
        if not waiting:  # decided before we looked (read from the past): nothing to ask
            async with session_scope(self.settings) as session:
                await telegram_approvals.claim(
                    session, row.id, decision=GONE, by="decided before the bot saw it"
                )
            return
        parent = await telegram_approvals.parent_of(self.temporal, execution_id)
        async with session_scope(self.settings) as session:
            origin = await telegram_progress.origin_chat(session, [execution_id, parent or ""])
        chats = [origin] if origin is not None else self._notify_chats()
        if node_id == BUDGET_WAIT:
            text = budget_text(execution_id=execution_id, budget=budget, used=used, run=parent)
            markup = budget_keyboard(row.id)
        else:
            text = texts.approval(execution_id=execution_id, node_id=node_id, preview=preview, run=parent)
            markup = keyboards.approval(row.id)
        sent: list[list[int]] = []
        for chat_id in chats:
            try:
                message = await self.bot.send_message(chat_id, text, reply_markup=markup)
            except TelegramAPIError as exc:  # e.g. a user who never opened a chat with the bot
                log.warning("approval prompt for %s not sent to %s: %s", execution_id, chat_id, exc)
                continue
            sent.append([chat_id, message.message_id])
        async with session_scope(self.settings) as session:
            await telegram_approvals.mark_sent(session, row.id, text=text, messages=sent)
            latest = await telegram_approvals.get(session, row.id)
        if latest is not None and latest.decision is not None:  # pressed before the copies were recorded
            await show_decision(self.bot, latest)

    def _notify_chats(self) -> list[int]:
        return list(self.settings.telegram_notify_chat_ids or self.settings.telegram_allowed_user_ids)

    async def _settle(self, execution_id: str, node_id: str | None, decision: str, by: str) -> None:
        async with session_scope(self.settings) as session:
            rows = await telegram_approvals.settle_open(
                session, execution_id, node_id=node_id, decision=decision, by=by
            )
        for row in rows:
            await show_decision(self.bot, row)
