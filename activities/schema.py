"""The journal's tables: the append-only events, the projections staff read, the outbox.

The migrations in migrations/versions/ create exactly these; a test checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)  # fmt: skip
from sqlalchemy.dialects.postgresql import JSONB

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
    Column("payload", JSONB, nullable=False),
    UniqueConstraint("dossier_id", "seq", name="events_dossier_seq"),
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
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("due", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True)),
    Column("channel", Text),
)
