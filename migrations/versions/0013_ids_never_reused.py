"""ids never reused: goals, DAGs, agents and providers get SQLite AUTOINCREMENT

Without it SQLite gives a new row the largest id in use plus one, so deleting the newest goal let
the next goal take its id, and `GET /runs?goalId=` listed the deleted goal's runs under it (runs
name goals and DAGs by id in Temporal's search attributes). PostgreSQL's sequences never go back.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("goal", "dag", "agent", "provider")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # Copying the rows into the AUTOINCREMENT table records the largest id in sqlite_sequence.
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
