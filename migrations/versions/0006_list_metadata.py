"""The back office's lists: each dossier's tab, holder type, territory (as a blind index) and reviewers.

`tab` (domain.tabs: à traiter, compléments demandés…) is derived from the status and the reviews;
`holder_type` is copied from the dossier's content, which is otherwise sealed: one value of a closed
list (entreprise, association…), kept in clear because staff filter their lists on it, as they already
read ids, statuses and deadlines there. The territory is what the holder wrote: it is never kept in
clear, only its blind index (`territory_index`, a keyed digest: `journal.keys.blind_index`), so that a
list filters on it and nothing else tells it.
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
    op.add_column("dossiers", sa.Column("territory_index", sa.Text()))
    op.add_column("dossiers", sa.Column("reviewers", postgresql.ARRAY(sa.Text())))
    op.create_index("dossiers_deadline", "dossiers", ["next_deadline", "dossier_id"])
    op.create_index("dossiers_call_deadline", "dossiers", ["call_id", "next_deadline", "dossier_id"])
    op.create_index("dossiers_call_tab_deadline", "dossiers", ["call_id", "tab", "next_deadline", "dossier_id"])
    op.create_index("dossiers_reviewers", "dossiers", ["reviewers"], postgresql_using="gin")


def downgrade() -> None:
    for index in ("dossiers_reviewers", "dossiers_call_tab_deadline", "dossiers_call_deadline", "dossiers_deadline"):
        op.drop_index(index, table_name="dossiers")
    for column in ("reviewers", "territory_index", "holder_type", "tab"):
        op.drop_column("dossiers", column)
