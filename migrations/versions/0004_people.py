"""The directory of people, their personal access tokens and invitation links.

Tokens and invitations keep only the SHA-256 of their secret, and go with their person. The
application's role manages all three (people are added, changed and removed; tokens revoked).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APP_ROLE = "amiflow_app"


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("email", sa.Text(), unique=True),
        sa.Column("grants", JSONB(), nullable=False),
        sa.Column("issuer", sa.Text()),
        sa.Column("subject", sa.Text()),
        sa.Column("siret", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("issuer", "subject", name="people_identity"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), sa.ForeignKey("people.name", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("label", sa.Text()),
    )
    op.create_index("ix_tokens_name", "tokens", ["name"])
    op.create_table(
        "invitations",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), sa.ForeignKey("people.name", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )
    op.execute(f"grant select, insert, update, delete on people, tokens, invitations to {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"revoke all on people, tokens, invitations from {APP_ROLE}")
    op.drop_table("invitations")
    op.drop_table("tokens")
    op.drop_table("people")
