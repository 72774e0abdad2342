"""/tasks and /done <task>: the chat intake's tasks (`services.todo_tasks`), as REST serves them."""

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from temporalio.client import Client

from bot import texts
from bot.handlers import lists
from bot.replies import int_arg
from core.db import session_scope
from core.models import TaskStatus
from core.settings import Settings
from services import todo_tasks

OPEN = {TaskStatus.todo, TaskStatus.in_progress}


async def _tasks(settings: Settings, temporal: Client, offset: int) -> tuple[list[str], bool]:
    async with session_scope(settings) as session:
        found = await todo_tasks.list_tasks(session, limit=lists.PAGE + 1, offset=offset)
    return [texts.task_line(task) for task in found[: lists.PAGE]], len(found) > lists.PAGE


lists.register(
    "tasks", "📋 <b>Tasks</b> (newest first; /done &lt;id&gt;)", "No tasks yet: write me one.", _tasks
)


async def tasks_command(message: Message, settings: Settings, temporal: Client) -> None:
    await lists.send_page(message, settings, temporal, "tasks")


async def done_command(message: Message, command: CommandObject, settings: Settings) -> None:
    """Mark a task done: an open task moves along its allowed steps (todo → in progress → done)."""
    task_id = int_arg(command.args)
    if task_id is None:
        await message.answer(texts.usage("done"))
        return
    async with session_scope(settings) as session:
        task = await todo_tasks.get_task(session, task_id)
        if task.status == TaskStatus.done:
            await message.answer(f"✅ Task <b>#{task_id}</b> was already done.")
            return
        if task.status == TaskStatus.todo:
            await todo_tasks.set_task_status(session, task_id, TaskStatus.in_progress)
        done = await todo_tasks.set_task_status(session, task_id, TaskStatus.done)
    await message.answer(f"✅ Done: <b>#{done.id}</b> {texts.esc(done.title)}")


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="tasks")
    found.message.register(tasks_command, Command("tasks"))
    found.message.register(done_command, Command("done"))
    return found
