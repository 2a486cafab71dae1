"""The back office's lists: each dossier's tab, holder type, territory and reviewers, in clear.

`tab` (domain.tabs: à traiter, compléments demandés…) is derived from the status and the reviews;
`holder_type` and `territory` are copied from the dossier's content, which is otherwise sealed:
they are kept in clear because staff filter their lists on them, as they already read ids, statuses
and deadlines there (metadata, as on the platforms agents use; no name, no section, no amount).
`reviewers` are the reviewers assigned who did not declare a conflict: a reviewer's list shows them.

Rows written before this migration keep NULL in the four columns until their dossier's next event
writes its projection again (a dossier with no further event stays in no tab and matches no filter).

Indexes serve the list orders: by next deadline (earliest first, none last), then id, per call and
per call and tab; the reviewers' array by containment (GIN).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dossiers", sa.Column("tab", sa.Text()))
    op.add_column("dossiers", sa.Column("holder_type", sa.Text()))
    op.add_column("dossiers", sa.Column("territory", sa.Text()))
    op.add_column("dossiers", sa.Column("reviewers", postgresql.ARRAY(sa.Text())))
    op.create_index("dossiers_deadline", "dossiers", ["next_deadline", "dossier_id"])
    op.create_index("dossiers_call_deadline", "dossiers", ["call_id", "next_deadline", "dossier_id"])
    op.create_index("dossiers_call_tab_deadline", "dossiers", ["call_id", "tab", "next_deadline", "dossier_id"])
    op.create_index("dossiers_reviewers", "dossiers", ["reviewers"], postgresql_using="gin")


def downgrade() -> None:
    for index in ("dossiers_reviewers", "dossiers_call_tab_deadline", "dossiers_call_deadline", "dossiers_deadline"):
        op.drop_index(index, table_name="dossiers")
    for column in ("reviewers", "territory", "holder_type", "tab"):
        op.drop_column("dossiers", column)
