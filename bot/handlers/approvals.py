"""Approve / Reject buttons: the same decision call as REST and the CLI, claimed once."""

from aiogram import Bot, Router
from aiogram.types import CallbackQuery
from temporalio.client import Client

from bot import texts
from bot.approvals import deliver, pressed_message, show_decision
from bot.keyboards import ApprovalCb
from contracts.dag import ApprovalDecision
from core.db import session_scope
from core.settings import Settings
from services import dag_executions, telegram_approvals
from services.telegram_approvals import APPROVED, REJECTED


async def decide(
    query: CallbackQuery, callback_data: ApprovalCb, bot: Bot, settings: Settings, temporal: Client
) -> None:
    """Claim the prompt, signal the waiting execution, then show who decided on every copy."""
    by = texts.person(query.from_user.first_name, query.from_user.username)
    decision = APPROVED if callback_data.ok else REJECTED
    async with session_scope(settings) as session:
        row = await telegram_approvals.get(session, callback_data.id)
        if row is None:
            await query.answer(texts.UNKNOWN_PROMPT)
            return
        claimed = await telegram_approvals.claim(session, row.id, decision=decision, by=by)
        if claimed is None:
            await query.answer(texts.ALREADY_DECIDED)
            return

        async def signal() -> None:
            await dag_executions.decide(
                temporal,
                row.execution_id,
                ApprovalDecision(node_id=row.node_id, comment=f"{decision} by {by} via Telegram"),
                approve=callback_data.ok,
            )

        if not await deliver(bot, session, query, claimed, signal):
            return
    await show_decision(bot, claimed, pressed=pressed_message(query))
    await query.answer("Approved." if callback_data.ok else "Rejected.")


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="approvals")
    found.callback_query.register(decide, ApprovalCb.filter())
    return found
