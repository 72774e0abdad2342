"""goals and the run usage ledger

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('goal',
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('objective', sqlmodel.sql.sqltypes.AutoString(length=20000), nullable=False),
    sa.Column('agent_name', sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
    sa.Column('schedule', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('max_tokens_per_run', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_goal_agent_name'), ['agent_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_goal_status'), ['status'], unique=False)

    op.create_table('run_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('run_kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=True),
    sa.Column('agent_name', sqlmodel.sql.sqltypes.AutoString(length=63), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('total_tokens', sa.Integer(), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workflow_id')
    )
    with op.batch_alter_table('run_usage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_usage_finished_at'), ['finished_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_usage_goal_id'), ['goal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_usage_run_kind'), ['run_kind'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('run_usage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_usage_run_kind'))
        batch_op.drop_index(batch_op.f('ix_run_usage_goal_id'))
        batch_op.drop_index(batch_op.f('ix_run_usage_finished_at'))

    op.drop_table('run_usage')
    with op.batch_alter_table('goal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_goal_status'))
        batch_op.drop_index(batch_op.f('ix_goal_agent_name'))

    op.drop_table('goal')
