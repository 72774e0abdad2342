"""/goal, /run, /pause, /resume: the same goal services the REST API calls."""

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from temporalio.client import Client

from bot import texts
from bot.progress import ProgressFollower
from bot.replies import int_arg
from core.db import session_scope
from core.errors import DomainError
from core.models import GoalCreate, GoalStatus
from core.settings import Settings
from services import goals

TITLE_CHARS = 80


def title_of(text: str) -> str:
    """A goal's title from what was typed: its first line, cut at a word."""
    line = text.strip().splitlines()[0].strip()
    if len(line) <= TITLE_CHARS:
        return line
    return line[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


async def goal_command(
    message: Message, command: CommandObject, settings: Settings, temporal: Client, progress: ProgressFollower
) -> None:
    """Create a goal from the text (default planner) and run it, with a live progress message."""
    text = (command.args or "").strip()
    if not text or message.from_user is None:
        await message.answer(texts.usage("goal"))
        return
    title = title_of(text)
    async with session_scope(settings) as session:
        goal = await goals.create_goal(session, temporal, settings, GoalCreate(title=title, objective=text))
        assert goal.id is not None
        try:
            run_id = await goals.start_run(session, temporal, settings, goal.id)
        except DomainError as exc:
            await message.answer(f"🎯 Goal <b>#{goal.id}</b> is saved, but it cannot run: {texts.error(exc)}")
            return
    await progress.start(
        chat_id=message.chat.id,
        user_id=message.from_user.id,
        run_id=run_id,
        title=f"Goal #{goal.id}: {title}",
    )


async def run_command(
    message: Message, command: CommandObject, settings: Settings, temporal: Client, progress: ProgressFollower
) -> None:
    """Run a goal now, with a live progress message."""
    goal_id = int_arg(command.args)
    if goal_id is None or message.from_user is None:
        await message.answer(texts.usage("run"))
        return
    async with session_scope(settings) as session:
        goal = await goals.get_goal(session, goal_id)
        run_id = await goals.start_run(session, temporal, settings, goal_id)
    await progress.start(
        chat_id=message.chat.id,
        user_id=message.from_user.id,
        run_id=run_id,
        title=f"Goal #{goal_id}: {goal.title}",
    )


async def _set_status(
    message: Message, command: CommandObject, settings: Settings, temporal: Client, status: GoalStatus
) -> None:
    goal_id = int_arg(command.args)
    if goal_id is None:
        await message.answer(texts.usage("pause" if status == GoalStatus.paused else "resume"))
        return
    async with session_scope(settings) as session:
        goal = await goals.set_status(session, temporal, settings, goal_id, status)
    schedule = " and its schedule" if goal.schedule else ""
    verb = "paused" if status == GoalStatus.paused else "active again"
    await message.answer(f"{texts.icon(goal.status)} Goal <b>#{goal_id}</b>{schedule} {verb}.")


async def pause_command(
    message: Message, command: CommandObject, settings: Settings, temporal: Client
) -> None:
    await _set_status(message, command, settings, temporal, GoalStatus.paused)


async def resume_command(
    message: Message, command: CommandObject, settings: Settings, temporal: Client
) -> None:
    await _set_status(message, command, settings, temporal, GoalStatus.active)


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="goals")
    found.message.register(goal_command, Command("goal"))
    found.message.register(run_command, Command("run"))
    found.message.register(pause_command, Command("pause"))
    found.message.register(resume_command, Command("resume"))
    return found
