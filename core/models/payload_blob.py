"""Pieces of large Temporal payloads kept out of the workflow history (core/payload_blobs.py).

A piece is stored once under its content hash, whatever number of payloads (each turn of a long
agent conversation repeats every earlier message) and workflows refer to it; a link row says
which workflow refers to it, so deleting a workflow's history (or its passing retention) can
delete the pieces nobody else refers to.
"""

from datetime import datetime

from sqlmodel import Field, SQLModel

from core.models.common import created_at_field


class PayloadBlob(SQLModel, table=True):
    """One piece: its hash (keyed with the codec key when payloads are encrypted) and its bytes
    (sealed by the payload codec when it is on)."""

    __tablename__ = "payload_blobs"

    hash: str = Field(primary_key=True, max_length=64)
    data: bytes
    size: int
    """Bytes of the piece before sealing (what left the history)."""
    created_at: datetime = created_at_field()


class PayloadBlobLink(SQLModel, table=True):
    """A workflow that refers to a piece."""

    __tablename__ = "payload_blob_links"

    hash: str = Field(primary_key=True, max_length=64)
    workflow_id: str = Field(primary_key=True, max_length=255, index=True)
    created_at: datetime = created_at_field()
