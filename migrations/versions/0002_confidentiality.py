"""Confidentiality: sealed events and outbox rows, per-dossier data keys, the read log.

Rows written before this revision keep their clear `payload` / `subject` / `body` (nothing is
lost, readers accept both); every new row is sealed and leaves those columns empty.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("events", "payload", nullable=True)
    op.add_column("events", sa.Column("key_id", sa.Text()))
    op.add_column("events", sa.Column("sealed", sa.LargeBinary()))
    op.alter_column("outbox", "subject", nullable=True)
    op.alter_column("outbox", "body", nullable=True)
    op.add_column("outbox", sa.Column("key_id", sa.Text()))
    op.add_column("outbox", sa.Column("sealed", sa.LargeBinary()))
    op.create_table(
        "dossier_keys",
        sa.Column("dossier_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("destroyed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("dossier_id", "key_id"),
    )
    op.create_table(
        "reads",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("dossier_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("via", sa.Text(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_reads_dossier_id", "reads", ["dossier_id"])


def downgrade() -> None:
    op.drop_table("reads")
    op.drop_table("dossier_keys")
    for table in ("outbox", "events"):
        op.drop_column(table, "sealed")
        op.drop_column(table, "key_id")
