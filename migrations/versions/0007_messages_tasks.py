"""messages, tasks and live events (chat intake); the classifier answers JSON

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
OLD_CLASSIFIER_PROMPT = "You classify the text you are given: answer with one short label and nothing else."
NEW_CLASSIFIER_PROMPT = (
    "You classify the text you are given. When asked for JSON, answer with exactly that JSON; "
    "otherwise answer with one short label and nothing else."
)


def upgrade() -> None:
    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=4096), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("sender_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("chat_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workflow_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("urgency", sa.String(length=8), nullable=True),
        sa.Column("is_task", sa.Boolean(), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("entities", JSON, nullable=True),
        sa.Column("classifier_version", sa.Integer(), nullable=True),
        sa.Column("extractor_version", sa.Integer(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        for column in ("source", "chat_id", "status", "category", "is_task", "created_at"):
            batch_op.create_index(batch_op.f(f"ix_message_{column}"), [column], unique=False)

    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=20000), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("assignees", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        for column in ("priority", "status", "due_at"):
            batch_op.create_index(batch_op.f(f"ix_task_{column}"), [column], unique=False)

    op.create_table(
        "live_event",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("live_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_event_created_at"), ["created_at"], unique=False)

    _classifier_answers_json()


def _classifier_answers_json() -> None:
    """The first default classifier answered one label in at most 32 tokens; MessageWorkflow
    asks it for JSON. If its active version is still that untouched default, it gets a next
    version that says so and may answer 256 tokens (a person's own version is left alone)."""
    bind = op.get_bind()
    active = bind.execute(
        sa.text(
            "SELECT id FROM agent WHERE name = 'classifier' AND is_active "
            "AND system_prompt = :old AND max_tokens = 32"
        ),
        {"old": OLD_CLASSIFIER_PROMPT},
    ).first()
    if active is None:
        return
    newest = bind.execute(sa.text("SELECT max(version) FROM agent WHERE name = 'classifier'")).scalar()
    bind.execute(sa.text("UPDATE agent SET is_active = false WHERE name = 'classifier'"))
    bind.execute(
        sa.text(
            "INSERT INTO agent (name, provider_id, model, system_prompt, temperature, max_tokens, tools, "
            "output_schema, version, is_active, created_at, updated_at) "
            "SELECT name, provider_id, model, :prompt, temperature, 256, tools, output_schema, :version, "
            "true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM agent WHERE id = :id"
        ),
        {"prompt": NEW_CLASSIFIER_PROMPT, "version": (newest or 0) + 1, "id": active[0]},
    )


def downgrade() -> None:
    with op.batch_alter_table("live_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_event_created_at"))
    op.drop_table("live_event")
    with op.batch_alter_table("task", schema=None) as batch_op:
        for column in ("due_at", "status", "priority"):
            batch_op.drop_index(batch_op.f(f"ix_task_{column}"))
    op.drop_table("task")
    with op.batch_alter_table("message", schema=None) as batch_op:
        for column in ("created_at", "is_task", "category", "status", "chat_id", "source"):
            batch_op.drop_index(batch_op.f(f"ix_message_{column}"))
    op.drop_table("message")
