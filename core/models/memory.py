"""Agent memories: short texts an agent stored with `remember` and finds again with `recall`."""

from datetime import datetime

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from contracts.agents import AgentName
from core.models.common import clean_labels, created_at_field, json_field

MAX_TAGS = 20


class MemoryBase(SQLModel):
    content: str = Field(min_length=1, max_length=20_000)
    tags: list[str] = json_field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, tags: list[str]) -> list[str]:
        """Trimmed, non-empty, unique, bounded: tags are labels, not a second content field."""
        return clean_labels(tags, max_items=MAX_TAGS, max_chars=64, what="tags")


class MemoryCreate(MemoryBase):
    """What `POST /agents/{name}/memories` takes; the agent name comes from the path."""


class Memory(MemoryBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    agent_name: str = Field(index=True, max_length=63)
    created_at: datetime = created_at_field()


class MemoryPublic(MemoryBase):
    id: int
    agent_name: AgentName
    created_at: datetime
