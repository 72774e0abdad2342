"""The Raise budget x2 and Stop buttons of an execution paused at its token budget: the same calls as
REST's `POST /dag-executions/{id}/budget` and `/cancel`, claimed once like an approval."""

from aiogram import Bot, Router
from aiogram.types import CallbackQuery
from temporalio.client import Client

from bot import texts
from bot.approvals import BudgetCb, deliver, pressed_message, show_decision
from contracts.dag import BudgetRaise
from core.db import session_scope
from core.errors import Conflict
from core.settings import Settings
from services import dag_executions, telegram_approvals
from services.telegram_approvals import RAISED, STOPPED


async def decide(
    query: CallbackQuery, callback_data: BudgetCb, bot: Bot, settings: Settings, temporal: Client
) -> None:
    """Claim the prompt, raise the budget (or cancel the run), then show who decided everywhere."""
    person = texts.person(query.from_user.first_name, query.from_user.username)
    async with session_scope(settings) as session:
        row = await telegram_approvals.get(session, callback_data.id)
        if row is None:
            await query.answer(texts.UNKNOWN_PROMPT)
            return
        waiting, budget, used = await telegram_approvals.budget_wait(temporal, settings, row.execution_id)
        raised = telegram_approvals.raised_budget(budget, used) if budget is not None else 0
        by = f"{person}, to {raised:,} tokens" if callback_data.more else person
        decision = RAISED if callback_data.more else STOPPED
        claimed = await telegram_approvals.claim(session, row.id, decision=decision, by=by)
        if claimed is None:
            await query.answer(texts.ALREADY_DECIDED)
            return

        async def act() -> None:
            if not waiting:
                raise Conflict("the execution no longer waits at its budget")
            if callback_data.more:
                request = BudgetRaise(max_tokens_per_run=raised, comment=f"raised by {person} via Telegram")
                await dag_executions.raise_budget(temporal, row.execution_id, request)
            else:
                await dag_executions.cancel(temporal, row.execution_id)

        if not await deliver(bot, session, query, claimed, act):
            return
    await show_decision(bot, claimed, pressed=pressed_message(query))
    await query.answer(f"Budget raised to {raised:,} tokens." if callback_data.more else "Stopping the run.")


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="budget")
    found.callback_query.register(decide, BudgetCb.filter())
    return found
