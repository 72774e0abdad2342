"""Tasks people track (`/tasks`): create, list, read, and move along the allowed transitions.

Not the agent task of `POST /task` (services/tasks.py). Every change publishes its real-time
event (task.created, task.updated) in the same transaction.
"""

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.intake import Priority
from core.db import count_by
from core.errors import Conflict, NotFound
from core.events import TASK_CREATED, TASK_UPDATED, publish
from core.models import TaskStatus, TodoTask, TodoTaskCreate, TodoTaskPublic
from core.models.common import utcnow
from core.models.todo import TRANSITIONS, task_event_data


class TransitionNotAllowed(Conflict):
    """The task cannot move from its status to the one asked for (409, naming the allowed ones)."""

    def __init__(self, task_id: int, current: TaskStatus, wanted: TaskStatus) -> None:
        self.allowed = list(TRANSITIONS[current])
        allowed = ", ".join(s.value for s in self.allowed) or "none (cancelled is final)"
        super().__init__(
            f"task {task_id} cannot move from {current.value} to {wanted.value}; allowed from "
            f"{current.value}: {allowed}"
        )


async def get_task(session: AsyncSession, task_id: int) -> TodoTask:
    """The task, or NotFound."""
    task = await session.get(TodoTask, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


async def create_task(session: AsyncSession, data: TodoTaskCreate) -> TodoTaskPublic:
    """A task typed in directly; it starts as `todo`."""
    task = TodoTask.model_validate(data)
    session.add(task)
    await session.flush()
    await session.refresh(task)  # as stored (times in UTC), for the event and the answer alike
    await publish(session, TASK_CREATED, {"task": task_event_data(task)})
    await session.commit()
    return TodoTaskPublic.of(task)


async def list_tasks(
    session: AsyncSession,
    *,
    status: TaskStatus | None = None,
    priority: Priority | None = None,
    due_before: datetime | None = None,
    due_after: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[TodoTaskPublic]:
    """Tasks, newest first; `due_before`/`due_after` keep only tasks with a due time in range."""
    query = select(TodoTask)
    if status is not None:
        query = query.where(TodoTask.status == status.value)
    if priority is not None:
        query = query.where(TodoTask.priority == priority.value)
    if due_before is not None:
        query = query.where(col(TodoTask.due_at) < due_before)
    if due_after is not None:
        query = query.where(col(TodoTask.due_at) > due_after)
    query = query.order_by(col(TodoTask.id).desc()).limit(limit).offset(offset)
    return [TodoTaskPublic.of(t) for t in (await session.exec(query)).all()]


async def set_task_status(session: AsyncSession, task_id: int, status: TaskStatus) -> TodoTaskPublic:
    """Move a task along an allowed transition (TRANSITIONS); asking for the status it already has
    changes nothing. TransitionNotAllowed (409) otherwise, also when a concurrent change won."""
    task = await get_task(session, task_id)
    current = TaskStatus(task.status)
    if current == status:
        return TodoTaskPublic.of(task)
    if status not in TRANSITIONS[current]:
        raise TransitionNotAllowed(task_id, current, status)
    now = utcnow()
    # Compare-and-set on the status read above: of two concurrent moves only one applies.
    moved = await session.exec(
        update(TodoTask)
        .where(col(TodoTask.id) == task_id, col(TodoTask.status) == current.value)
        .values(
            status=status.value,
            completed_at=now if status == TaskStatus.done else None,
            updated_at=now,
        )
    )
    if moved.rowcount != 1:
        await session.rollback()
        fresh = await get_task(session, task_id)
        if fresh.status == status.value:  # a concurrent request did the same move
            return TodoTaskPublic.of(fresh)
        raise TransitionNotAllowed(task_id, TaskStatus(fresh.status), status)
    await session.refresh(task)
    await publish(session, TASK_UPDATED, {"task": task_event_data(task), "previous_status": current.value})
    await session.commit()
    return TodoTaskPublic.of(task)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """How many tasks have each status (every status listed, zeros included)."""
    return await count_by(session, TodoTask.status, (status.value for status in TaskStatus))
