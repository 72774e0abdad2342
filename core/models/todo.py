"""Tasks people track (`/tasks`), typed in or made from chat messages that are tasks.

Not to be confused with `POST /task`, which runs an agent on files (AgentTaskWorkflow). A task
moves only along `TRANSITIONS`: todo → in_progress → done, any open one → cancelled, and done →
todo to reopen.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, field_validator
from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from contracts.intake import Priority
from core.models.common import UTCDateTime, clean_labels, created_at_field, json_field, updated_at_field

MAX_ASSIGNEES = 20


class TaskStatus(StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


TRANSITIONS: dict[TaskStatus, tuple[TaskStatus, ...]] = {
    TaskStatus.todo: (TaskStatus.in_progress, TaskStatus.cancelled),
    TaskStatus.in_progress: (TaskStatus.done, TaskStatus.cancelled),
    TaskStatus.done: (TaskStatus.todo,),
    TaskStatus.cancelled: (),
}
"""Where each status may go; setting the status a task already has changes nothing."""


class TodoTaskBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    priority: Priority = Field(default=Priority.normal, sa_type=String(8), index=True)
    assignees: list[str] = json_field(default_factory=list)

    @field_validator("assignees")
    @classmethod
    def _clean_assignees(cls, names: list[str]) -> list[str]:
        return clean_labels(names, max_items=MAX_ASSIGNEES, max_chars=100, what="assignees")


class TodoTaskCreate(TodoTaskBase):
    """`POST /tasks`: a task typed in directly (it starts as `todo`)."""

    due_at: AwareDatetime | None = None


class TodoTaskStatusUpdate(SQLModel):
    """`PUT /tasks/{id}/status`."""

    status: TaskStatus


class TodoTask(TodoTaskBase, table=True):
    __tablename__ = "task"

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=TaskStatus.todo.value, sa_type=String(16), index=True)
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True))
    message_id: int | None = Field(default=None, foreign_key="message.id", unique=True)
    """The message it was made from; unique, so a retried activity finds the task it made."""
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class TodoTaskPublic(BaseModel):
    id: int
    title: str
    description: str
    status: TaskStatus
    priority: Priority
    due_at: datetime | None
    assignees: list[str]
    message_id: int | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, task: TodoTask) -> "TodoTaskPublic":
        return cls.model_validate(task, from_attributes=True)


def task_event_data(task: TodoTask) -> dict[str, Any]:
    """The `task` object of task.* events: the public shape, description shortened."""
    public = TodoTaskPublic.of(task)
    public.description = public.description[:500]
    return public.model_dump(mode="json")
