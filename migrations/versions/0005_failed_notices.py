"""Failed notices: a notice whose delivery failed for good stays in the outbox as a dead letter
(`failed_at`, how many `attempts`, the last `failure`), for staff to see; a later delivery clears it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("failed_at", sa.DateTime(timezone=True)))
    op.add_column("outbox", sa.Column("attempts", sa.Integer()))
    op.add_column("outbox", sa.Column("failure", sa.Text()))
    op.create_index("outbox_failed", "outbox", ["failed_at"], postgresql_where=sa.text("failed_at is not null"))


def downgrade() -> None:
    op.drop_index("outbox_failed", table_name="outbox")
    for column in ("failure", "attempts", "failed_at"):
        op.drop_column("outbox", column)
