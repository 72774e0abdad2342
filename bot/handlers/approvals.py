"""Approve / Reject buttons: the same decision call as REST and the CLI, claimed once; and a
reply to a prompt that shows a tool's question (MCP elicitation) answers it, as
`POST /dag-executions/{id}/answer` does."""

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import CallbackQuery, Message
from temporalio.client import Client

from bot import texts
from bot.approvals import deliver, pressed_message, show_decision
from bot.keyboards import ApprovalCb
from contracts.dag import ApprovalDecision, InputAnswer
from core.db import session_scope
from core.errors import DomainError
from core.settings import Settings
from services import dag_executions, telegram_approvals
from services.telegram_approvals import ANSWERED, APPROVED, REJECTED


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


async def answer_question(message: Message, bot: Bot, settings: Settings, temporal: Client) -> None:
    """A reply to a question's prompt: its fields (`name=Ada` lines or JSON) answer the tool."""
    reply = message.reply_to_message
    if reply is None or not message.text:
        raise SkipHandler
    async with session_scope(settings) as session:
        row = await telegram_approvals.open_by_message(session, message.chat.id, reply.message_id)
    if row is None:
        raise SkipHandler  # a reply to something else: the other handlers' message
    try:
        detail = await dag_executions.get_execution(temporal, settings, row.execution_id)
    except DomainError as exc:
        await message.reply(texts.esc(str(exc)))
        return
    node = next((n for n in detail.nodes if n.id == row.node_id), None)
    if node is None or node.question is None:
        await message.reply(texts.NOT_A_QUESTION)
        return
    try:
        content = telegram_approvals.parse_answer(message.text, node.question.get("requested_schema") or {})
    except ValueError as exc:
        await message.reply(texts.esc(f"Not an answer: {exc}"))
        return
    by = texts.person(
        message.from_user.first_name if message.from_user else None,
        message.from_user.username if message.from_user else None,
    )
    async with session_scope(settings) as session:
        claimed = await telegram_approvals.claim(session, row.id, decision=ANSWERED, by=by)
        if claimed is None:
            await message.reply(texts.ALREADY_DECIDED)
            return
        try:
            await dag_executions.answer(
                temporal, row.execution_id, InputAnswer(node_id=row.node_id, action="accept", content=content)
            )
        except DomainError as exc:
            await telegram_approvals.release(session, row.id)
            await message.reply(texts.esc(f"Not answered: {exc}"))
            return
    await show_decision(bot, claimed)
    await message.reply("Answered.")


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="approvals")
    found.callback_query.register(decide, ApprovalCb.filter())
    found.message.register(answer_question, F.reply_to_message)
    return found
