"""telegram: approval prompts, stream offsets, progress messages, webhook inbox

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "telegram_approvals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("execution_id", sa.String(length=255), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("event_offset", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=4096), nullable=False),
        sa.Column("messages", JSON, nullable=False),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("execution_id", "event_offset", name="uq_telegram_approval_event"),
    )
    op.create_index("ix_telegram_approvals_execution_id", "telegram_approvals", ["execution_id"])

    op.create_table(
        "telegram_watches",
        sa.Column("execution_id", sa.String(length=255), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("execution_id"),
    )
    op.create_index("ix_telegram_watches_closed", "telegram_watches", ["closed"])

    op.create_table(
        "telegram_progress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("started_by", sa.BigInteger(), nullable=False),
        sa.Column("execution_id", sa.String(length=255), nullable=True),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("running", JSON, nullable=False),
        sa.Column("waiting", JSON, nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("rendered", sa.String(length=4096), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_telegram_progress_run_id", "telegram_progress", ["run_id"])
    op.create_index("ix_telegram_progress_execution_id", "telegram_progress", ["execution_id"])
    op.create_index("ix_telegram_progress_stage", "telegram_progress", ["stage"])

    op.create_table(
        "telegram_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("taken", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id"),
    )
    op.create_index("ix_telegram_updates_taken", "telegram_updates", ["taken"])


def downgrade() -> None:
    op.drop_index("ix_telegram_updates_taken", table_name="telegram_updates")
    op.drop_table("telegram_updates")
    op.drop_index("ix_telegram_progress_stage", table_name="telegram_progress")
    op.drop_index("ix_telegram_progress_execution_id", table_name="telegram_progress")
    op.drop_index("ix_telegram_progress_run_id", table_name="telegram_progress")
    op.drop_table("telegram_progress")
    op.drop_index("ix_telegram_watches_closed", table_name="telegram_watches")
    op.drop_table("telegram_watches")
    op.drop_index("ix_telegram_approvals_execution_id", table_name="telegram_approvals")
    op.drop_table("telegram_approvals")
