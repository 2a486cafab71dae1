"""The journal's tables: the append-only events, the projections staff read, the outbox.

The migrations in migrations/versions/ create exactly these; a test checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dossier_id", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("workflow_id", Text, nullable=False),
    # The event, sealed with the dossier's data key `key_id` (AES-256-GCM, bound to dossier and seq).
    # `payload` holds clear JSON only for rows written before encryption (migration 0002).
    Column("payload", JSONB),
    Column("key_id", Text),
    Column("sealed", LargeBinary),
    # The chains (journal/ledger.py): per dossier (`hash`) and over every entry (`gseq`, `ghash`).
    Column("hash", LargeBinary, nullable=False),
    Column("gseq", BigInteger, nullable=False, unique=True),
    Column("ghash", LargeBinary, nullable=False),
    UniqueConstraint("dossier_id", "seq", name="events_dossier_seq"),
)

dossier_keys = Table(
    "dossier_keys",
    metadata,
    Column("dossier_id", Text, nullable=False),
    Column("key_id", Text, nullable=False),  # the master key that wraps it
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("destroyed_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("dossier_id", "key_id"),
)

# The read log: every read of confidential content, granted or refused.
reads = Table(
    "reads",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dossier_id", Text, nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("what", Text, nullable=False),  # content, reviews, summary, history, document:<id>
    Column("via", Text, nullable=False),  # cli, codec
    Column("granted", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("hash", LargeBinary, nullable=False),
    Column("gseq", BigInteger, nullable=False, unique=True),
    Column("ghash", LargeBinary, nullable=False),
)

# The head of the global chain: one row, locked by each append so the chain has one order.
journal_head = Table(
    "journal_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("gseq", BigInteger, nullable=False),
    Column("ghash", LargeBinary, nullable=False),
)

# Daily anchors: the global head at the end of each day (Paris), to be exported and kept elsewhere.
anchors = Table(
    "anchors",
    metadata,
    Column("day", Date, primary_key=True),
    Column("gseq", BigInteger, nullable=False),
    Column("ghash", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

dossiers = Table(
    "dossiers",
    metadata,
    Column("dossier_id", Text, primary_key=True),
    Column("call_id", Text, nullable=False),
    Column("phase_id", Text, nullable=False),
    Column("holder", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("next_deadline", DateTime(timezone=True)),
    Column("next_deadline_kind", Text),
    Column("submitted_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Clear metadata for the back office's tabs and filters (migration 0006; NULL on older rows).
    Column("tab", Text),
    Column("holder_type", Text),
    Column("territory_index", Text),
    Column("reviewers", ARRAY(Text)),  # assigned, not recused
)

call_counts = Table(
    "call_counts",
    metadata,
    Column("call_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("call_id", "status"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("key", Text, primary_key=True),
    Column("dossier_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    # Subject and body sealed with the dossier's key (`key_id`, `sealed`); clear only in rows written
    # before encryption (migration 0002). Delivered mail is clear by nature: it reaches its reader.
    Column("subject", Text),
    Column("body", Text),
    Column("key_id", Text),
    Column("sealed", LargeBinary),
    Column("due", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True)),
    Column("channel", Text),
    # A dead letter: every attempt failed (migration 0005). Cleared when the notice is delivered after all.
    Column("failed_at", DateTime(timezone=True)),
    Column("attempts", Integer),
    Column("failure", Text),  # the channel's last error, control characters removed; never the notice
)

# The directory of people: their roles (grants: [{"role", "call_id"}]) and their OpenID identity.
people = Table(
    "people",
    metadata,
    Column("name", Text, primary_key=True),
    Column("email", Text, unique=True),
    Column("grants", JSONB, nullable=False),
    Column("issuer", Text),
    Column("subject", Text),
    Column("siret", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("issuer", "subject", name="people_identity"),
)

# Personal access tokens: the SHA-256 of the secret only; removed with their person.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, ForeignKey("people.name", ondelete="CASCADE"), nullable=False, index=True),
    Column("role", Text, nullable=False),
    Column("digest", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("label", Text),
)

# Invitation links: single use, with an expiry, bound to a person.
invitations = Table(
    "invitations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, ForeignKey("people.name", ondelete="CASCADE"), nullable=False),
    Column("digest", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)
