"""Versioned agents: one row per (name, version), at most one active version per name."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import StringConstraints
from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.models.common import MAX_DB_ID, created_at_field, json_field, updated_at_field

AgentName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", max_length=63)]


class AgentBase(SQLModel):
    name: AgentName = Field(index=True, max_length=63)
    provider_id: int = Field(foreign_key="provider.id", index=True, ge=1, le=MAX_DB_ID)
    model: str = Field(min_length=1, max_length=200)
    system_prompt: str = Field(default="", max_length=50_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    tools: list[str] = json_field(default_factory=list)
    output_schema: dict[str, Any] | None = json_field(nullable=True)


class AgentCreate(AgentBase):
    """A new version; `activate` defaults to true only for a name's first version."""

    activate: bool | None = None


class AgentUpdate(SQLModel):
    provider_id: int | None = Field(default=None, ge=1, le=MAX_DB_ID)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, max_length=50_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    tools: list[str] | None = None
    output_schema: dict[str, Any] | None = None


class Agent(AgentBase, table=True):
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_agent_name_version"),
        # The database, not just the service, guarantees one active version per name.
        Index(
            "uq_agent_active_name",
            "name",
            unique=True,
            postgresql_where=text("is_active"),
            sqlite_where=text("is_active"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    version: int = 1
    is_active: bool = False
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class AgentPublic(AgentBase):
    id: int
    version: int
    is_active: bool
    created_at: datetime
    updated_at: datetime
