"""/ask <agent> <prompt>: the agent test (`POST /agents/{id}/test`), run as a workflow."""

import json

from aiogram import Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from temporalio.client import Client

from bot import texts
from bot.replies import answer_text
from core.db import session_scope
from core.settings import Settings
from services import agents
from services.waiting import StillRunning


async def ask_command(message: Message, command: CommandObject, settings: Settings, temporal: Client) -> None:
    """Run the named agent's active version on the prompt and answer its output."""
    name, _, prompt = (command.args or "").strip().partition(" ")
    if not name or not prompt.strip():
        await message.answer(texts.usage("ask"))
        return
    await message.chat.do(ChatAction.TYPING)
    async with session_scope(settings) as session:
        agent = await agents.resolve_agent(session, name.lower())
        assert agent.id is not None
        workflow_id, result = await agents.test_agent(session, temporal, settings, agent.id, prompt.strip())
    if isinstance(result, StillRunning):
        await message.answer(
            f"⏳ {texts.esc(agent.name)} is still working after {result.waited_s:.0f} s; "
            f"follow <code>{texts.esc(workflow_id)}</code> in the Web UI."
        )
        return
    output = result.output if isinstance(result.output, str) else json.dumps(result.output, indent=2)
    footer = (
        f"\n\n— {result.agent_name} v{result.agent_version} · {result.execution_time_ms / 1000:.1f} s · "
        f"{texts.tokens(result.usage.total_tokens)}"
    )
    await answer_text(
        message, output + footer, filename=f"{agent.name}-answer.txt", caption=f"{agent.name} answered"
    )


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="agents")
    found.message.register(ask_command, Command("ask"))
    return found
