"""goal plan modes and frozen plans: goal.plan, goal.replan_after_failures, goal_plan, goal_plan_run

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("plan", sa.String(length=16), nullable=False, server_default="every_run")
        )
        batch_op.add_column(sa.Column("replan_after_failures", sa.Integer(), nullable=True))

    op.create_table(
        "goal_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.Integer(), nullable=False),
        sa.Column("source_workflow_id", sa.String(length=255), nullable=False),
        sa.Column("planner_name", sa.String(length=63), nullable=False),
        sa.Column("planner_version", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["goal_id"], ["goal.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dag_id"], ["dag.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("goal_id", "version", name="uq_goal_plan_version"),
        sa.UniqueConstraint("source_workflow_id"),
    )
    op.create_index("ix_goal_plan_goal_id", "goal_plan", ["goal_id"])
    op.create_index("ix_goal_plan_dag_id", "goal_plan", ["dag_id"])

    op.create_table(
        "goal_plan_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["goal_plan.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id"),
    )
    op.create_index("ix_goal_plan_run_plan_id", "goal_plan_run", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_goal_plan_run_plan_id", table_name="goal_plan_run")
    op.drop_table("goal_plan_run")
    op.drop_index("ix_goal_plan_dag_id", table_name="goal_plan")
    op.drop_index("ix_goal_plan_goal_id", table_name="goal_plan")
    op.drop_table("goal_plan")
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.drop_column("replan_after_failures")
        batch_op.drop_column("plan")
