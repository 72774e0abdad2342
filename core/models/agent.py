"""Versioned agents: one row per (name, version), at most one active version per name."""

from datetime import datetime
from typing import Annotated, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import AfterValidator
from sqlalchemy import JSON, Column, Dialect, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

from contracts.agents import (
    DEFAULT_MAX_REQUESTS,
    MAX_FALLBACKS,
    MAX_REQUESTS_CAP,
    MAX_TOOL_CALLS_CAP,
    AgentName,
    ModelRef,
)
from core.models.common import MAX_DB_ID, created_at_field, json_field, updated_at_field


def _valid_json_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refuse at the door a schema the model's output could never be checked against."""
    if schema is not None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise ValueError(f"not a valid JSON schema at {where}: {exc.message}") from None
    return schema


OutputSchema = Annotated[dict[str, Any] | None, AfterValidator(_valid_json_schema)]


class ModelRefs(TypeDecorator[list[ModelRef]]):
    """A JSON list of `ModelRef` (JSONB on PostgreSQL), read back as `ModelRef`s."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: list[ModelRef] | None, dialect: Dialect) -> list[dict[str, Any]]:
        return [ModelRef.model_validate(ref).model_dump() for ref in value or []]

    def process_result_value(self, value: list[dict[str, Any]] | None, dialect: Dialect) -> list[ModelRef]:
        return [ModelRef.model_validate(ref) for ref in value or []]


def fallbacks_field() -> Any:
    """The ordered fallback models of a version (at most `MAX_FALLBACKS`)."""
    return Field(
        default_factory=list,
        max_length=MAX_FALLBACKS,
        sa_column=Column(ModelRefs(), nullable=False, server_default=text("'[]'")),
    )


class AgentBase(SQLModel):
    name: AgentName = Field(index=True, max_length=63)
    provider_id: int = Field(foreign_key="provider.id", index=True, ge=1, le=MAX_DB_ID)
    model: str = Field(min_length=1, max_length=200)
    system_prompt: str = Field(default="", max_length=50_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    tools: list[str] = json_field(default_factory=list)
    output_schema: OutputSchema = json_field(nullable=True)
    fallbacks: list[ModelRef] = fallbacks_field()
    max_requests: int = Field(
        default=DEFAULT_MAX_REQUESTS,
        ge=1,
        le=MAX_REQUESTS_CAP,
        sa_column_kwargs={"server_default": text(str(DEFAULT_MAX_REQUESTS))},
    )
    """Model requests one run of this version may send; reaching it fails the run (AgentLimitReached)."""
    max_tool_calls: int | None = Field(default=None, ge=1, le=MAX_TOOL_CALLS_CAP)
    """Tool calls one run may make; none: only `max_requests` bounds a tool loop."""


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
    output_schema: OutputSchema = None
    fallbacks: list[ModelRef] | None = Field(default=None, max_length=MAX_FALLBACKS)
    max_requests: int | None = Field(default=None, ge=1, le=MAX_REQUESTS_CAP)
    max_tool_calls: int | None = Field(default=None, ge=1, le=MAX_TOOL_CALLS_CAP)


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
        {"sqlite_autoincrement": True},  # ids never reused (migration 0013)
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
