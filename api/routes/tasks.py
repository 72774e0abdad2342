"""Tasks people track (`/tasks`); not `POST /task`, which runs an agent on files."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import IdPath, PageDep, SessionDep
from contracts.intake import Priority
from core.models import TaskStatus, TodoTaskCreate, TodoTaskPublic, TodoTaskStatusUpdate
from services import todo_tasks as service

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_task(data: TodoTaskCreate, session: SessionDep) -> TodoTaskPublic:
    """Create a task (it starts as `todo`)."""
    return await service.create_task(session, data)


@router.get("")
async def list_tasks(
    session: SessionDep,
    page: PageDep,
    status: TaskStatus | None = None,
    priority: Priority | None = None,
    due_before: Annotated[datetime | None, Query(description="Due strictly before (ISO 8601)")] = None,
    due_after: Annotated[datetime | None, Query(description="Due strictly after (ISO 8601)")] = None,
) -> list[TodoTaskPublic]:
    """Tasks, newest first."""
    return await service.list_tasks(
        session,
        status=status,
        priority=priority,
        due_before=due_before,
        due_after=due_after,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{task_id}")
async def get_task(task_id: IdPath, session: SessionDep) -> TodoTaskPublic:
    """One task."""
    return TodoTaskPublic.of(await service.get_task(session, task_id))


@router.put(
    "/{task_id}/status",
    responses={409: {"description": "Not an allowed transition; the answer names the allowed ones"}},
)
async def set_task_status(task_id: IdPath, data: TodoTaskStatusUpdate, session: SessionDep) -> TodoTaskPublic:
    """Move a task: todo → in_progress → done, any open one → cancelled, done → todo (reopen)."""
    return await service.set_task_status(session, task_id, data.status)
