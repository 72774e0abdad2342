"""agents: the request and tool-call limits of one run (max_requests, max_tool_calls)

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing version gets the default limit (contracts.agents.DEFAULT_MAX_REQUESTS).
    op.add_column("agent", sa.Column("max_requests", sa.Integer(), nullable=False, server_default=sa.text("100")))
    op.add_column("agent", sa.Column("max_tool_calls", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("agent", "max_tool_calls")
    op.drop_column("agent", "max_requests")
