"""Artifact metadata: the file lives under ARTIFACTS_DIR, the row says what it is and where from."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from core.models.common import created_at_field


class ArtifactBase(SQLModel):
    name: str = Field(max_length=200, unique=True)
    content_type: str = Field(max_length=200)
    size_bytes: int = Field(ge=0)
    sha256: str = Field(min_length=64, max_length=64)
    workflow_id: str | None = Field(default=None, max_length=500, index=True)
    node_id: str | None = Field(default=None, max_length=500)


class Artifact(ArtifactBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = created_at_field()


class ArtifactPublic(ArtifactBase):
    id: int
    created_at: datetime
