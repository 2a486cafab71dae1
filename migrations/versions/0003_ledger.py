"""The ledger: hash chains over the journal, daily anchors, append-only events and reads.

- `events.hash` chains each dossier's events; `gseq`/`ghash` chain every entry (events and reads)
  in one global order whose head is `journal_head` (see journal/ledger.py). Rows already there are
  chained here, in the order they were written, with the rules as they stood at this revision (frozen
  below: a migration never imports application code, which may change after it).
- A trigger refuses UPDATE, DELETE and TRUNCATE on `events` and `reads`, for every role.
- The application's role `amiflow_app` (created if missing, without password: set one in production)
  may read and insert the journal, never change it.

Revision ID: 0003
Revises: 0002
"""

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APP_ROLE = "amiflow_app"

# --- The chain rules of this revision, copied from the ledger of the time (journal/ledger.py).
GENESIS = bytes(32)


def _canonical(values: list[Any]) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


def _instant_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(value.astimezone(UTC).isoformat(timespec="microseconds"))


def _b64_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return base64.b64encode(bytes(value)).decode()


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def event_entry(row: Mapping[str, Any]) -> bytes:
    return _canonical(["event", row["dossier_id"], int(row["seq"]), row["type"], row["actor"],
                       _instant_text(row["occurred_at"]), row.get("key_id"), _b64_text(row.get("sealed")),
                       _json_text(row.get("payload"))])


def read_entry(row: Mapping[str, Any]) -> bytes:
    return _canonical(["read", row["dossier_id"], _instant_text(row["at"]), row["actor"], row["what"], row["via"],
                       bool(row["granted"]), row["reason"]])


def link(previous: bytes, entry: bytes) -> bytes:
    return hashlib.sha256(previous + entry).digest()


def global_link(previous: bytes, dossier_id: str, entry_hash: bytes) -> bytes:
    return link(previous, hashlib.sha256(dossier_id.encode()).digest() + entry_hash)


def upgrade() -> None:
    for table in ("events", "reads"):
        op.add_column(table, sa.Column("hash", sa.LargeBinary()))
        op.add_column(table, sa.Column("gseq", sa.BigInteger(), unique=True))
        op.add_column(table, sa.Column("ghash", sa.LargeBinary()))
    op.add_column("reads", sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False,
                                     server_default=sa.func.now()))
    op.create_table(
        "journal_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("gseq", sa.BigInteger(), nullable=False),
        sa.Column("ghash", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "anchors",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("gseq", sa.BigInteger(), nullable=False),
        sa.Column("ghash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    conn = op.get_bind()
    # Chain what is already there: events by dossier and seq, everything globally in writing order.
    events = conn.execute(sa.text("select id, dossier_id, seq, type, actor, occurred_at, key_id, sealed, payload, "
                                  "recorded_at from events order by dossier_id, seq")).mappings().all()
    reads = conn.execute(sa.text("select id, dossier_id, at, actor, what, via, granted, reason, recorded_at "
                                 "from reads order by id")).mappings().all()
    hashes: dict[tuple[str, int], bytes] = {}
    previous: dict[str, bytes] = {}
    for row in events:
        hashes[("events", row["id"])] = previous[row["dossier_id"]] = link(previous.get(row["dossier_id"], GENESIS),
                                                                            event_entry(row))
    for row in reads:
        hashes[("reads", row["id"])] = link(GENESIS, read_entry(row))
    order = sorted([(r["recorded_at"], 0, r["id"], "events", r["dossier_id"]) for r in events]
                   + [(r["recorded_at"], 1, r["id"], "reads", r["dossier_id"]) for r in reads])
    head, gseq = GENESIS, 0
    for _, _, ident, table, dossier in order:
        gseq += 1
        head = global_link(head, dossier, hashes[(table, ident)])
        conn.execute(sa.text(f"update {table} set hash = :h, gseq = :g, ghash = :gh where id = :i"),
                     {"h": hashes[(table, ident)], "g": gseq, "gh": head, "i": ident})
    conn.execute(sa.text("insert into journal_head (id, gseq, ghash) values (1, :g, :h)"), {"g": gseq, "h": head})
    for table in ("events", "reads"):  # every entry is chained from now on
        for column in ("hash", "gseq", "ghash"):
            op.alter_column(table, column, nullable=False)

    op.execute("""
        create function amiflow_append_only() returns trigger language plpgsql as $$
        begin
            raise exception 'amiflow : % refusé sur % — le journal ne s’écrit qu’en ajout', tg_op, tg_table_name
                using errcode = 'insufficient_privilege';
        end $$""")
    for table in ("events", "reads"):
        op.execute(f"create trigger {table}_append_only before update or delete on {table} "
                   "for each row execute function amiflow_append_only()")
        op.execute(f"create trigger {table}_no_truncate before truncate on {table} "
                   "for each statement execute function amiflow_append_only()")
    op.execute(f"""
        do $$ begin
            if not exists (select from pg_roles where rolname = '{APP_ROLE}') then
                create role {APP_ROLE} login;
            end if;
        end $$""")
    op.execute(f"do $$ begin execute format('grant connect on database %I to {APP_ROLE}', current_database()); end $$")
    op.execute(f"grant usage on schema public to {APP_ROLE}")
    op.execute(f"grant select, insert on events, reads, anchors to {APP_ROLE}")
    writable = "dossiers, call_counts, outbox, dossier_keys, journal_head"  # projections, keys (destroyed in place)
    op.execute(f"grant select, insert, update on {writable} to {APP_ROLE}")
    op.execute(f"grant select on alembic_version to {APP_ROLE}")
    op.execute(f"grant usage, select on all sequences in schema public to {APP_ROLE}")


def downgrade() -> None:
    for table in ("events", "reads"):
        op.execute(f"drop trigger {table}_append_only on {table}")
        op.execute(f"drop trigger {table}_no_truncate on {table}")
    op.execute("drop function amiflow_append_only()")
    op.execute(f"revoke all on all tables in schema public from {APP_ROLE}")
    op.drop_table("anchors")
    op.drop_table("journal_head")
    op.drop_column("reads", "recorded_at")
    for table in ("events", "reads"):
        for column in ("ghash", "gseq", "hash"):
            op.drop_column(table, column)
