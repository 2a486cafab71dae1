"""The migrations create exactly the tables `activities/schema.py` describes."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from activities.schema import metadata
from amiflow.db import create_engine


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
