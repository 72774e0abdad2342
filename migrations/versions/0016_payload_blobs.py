"""payload_blobs: pieces of large Temporal payloads kept out of the history, by content hash

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payload_blobs",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "payload_blob_links",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.String(255), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_payload_blob_links_workflow_id", "payload_blob_links", ["workflow_id"])


def downgrade() -> None:
    op.drop_index("ix_payload_blob_links_workflow_id", "payload_blob_links")
    op.drop_table("payload_blob_links")
    op.drop_table("payload_blobs")
