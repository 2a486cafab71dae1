"""The migrations create exactly the tables `journal/schema.py` describes, and import no application code."""

from __future__ import annotations

import ast
import importlib.util
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from journal import ledger
from journal.postgres import MIGRATIONS, create_engine
from journal.schema import metadata


async def test_migrated_database_matches_the_schema(database: str) -> None:
    engine = create_engine(database)

    def differences(connection: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
    finally:
        await engine.dispose()
    # Indexes exist only in the migration (they serve queries, not the model).
    assert [d for d in diff if d[0] not in ("remove_index",)] == []


def test_migrations_import_no_application_code() -> None:
    """A migration runs years after it was written: what it needs of the code of its time is copied
    into it, so that a later change of that code cannot change what an old migration does."""
    ours = {"domain", "workflows", "activities", "journal", "amiflow"}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not {n.split(".")[0] for n in names} & ours, (path.name, names)


def test_the_frozen_chain_rules_of_0003_are_the_ledger_s() -> None:
    """Rows chained by migration 0003 verify with today's ledger (the day they differ, the ledger
    has changed its format and must still read the old one)."""
    spec = importlib.util.spec_from_file_location("m0003", MIGRATIONS / "versions" / "0003_ledger.py")
    assert spec is not None and spec.loader is not None
    frozen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frozen)
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    event = {"dossier_id": "a.b", "seq": 2, "type": "submitted", "actor": "holder:acme", "occurred_at": at,
             "key_id": None, "sealed": None, "payload": {"type": "submitted", "é": [1, 2]}}
    read = {"dossier_id": "a.b", "at": at, "actor": "staff:amelie", "what": "content", "via": "cli",
            "granted": True, "reason": "équipe de l’appel"}
    assert frozen.event_entry(event) == ledger.event_entry(event)
    assert frozen.event_entry({**event, "sealed": b"\x00\x01", "payload": None}) == \
        ledger.event_entry({**event, "sealed": b"\x00\x01", "payload": None})
    assert frozen.read_entry(read) == ledger.read_entry(read)
    h = frozen.link(frozen.GENESIS, frozen.event_entry(event))
    assert h == ledger.link(ledger.GENESIS, ledger.event_entry(event))
    assert frozen.global_link(frozen.GENESIS, "a.b", h) == ledger.global_link(ledger.GENESIS, "a.b", h)
