"""mcp_servers: registered MCP tool servers (connection, encrypted env/headers, listed tools)

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(32), nullable=False, unique=True),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("command", sa.String(500), nullable=True),
        sa.Column("args", JSON, nullable=False),
        sa.Column("cwd", sa.String(500), nullable=True),
        sa.Column("url", sa.String(1000), nullable=True),
        sa.Column("approval", sa.String(16), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("encrypted_env", sa.String(), nullable=True),
        sa.Column("encrypted_headers", sa.String(), nullable=True),
        sa.Column("secret_hints", JSON, nullable=False),
        sa.Column("tools", JSON, nullable=False),
        sa.Column("skipped_tools", JSON, nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("mcp_servers")
