"""The database: engine creation and migrations (Alembic, run from code)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def async_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy's asyncpg dialect (accepts plain postgresql:// URLs)."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError(f"URL PostgreSQL attendue, reçu : {url!r}")


APP_ROLE = "amiflow_app"  # created by migration 0003: reads and appends the journal, never changes it


def app_url(url: str) -> str:
    """The same database, as the application's role (the embedded server trusts local connections;
    in production give the role a password and put it in AMIFLOW_DATABASE_URL)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(username=APP_ROLE, password=None).render_as_string(hide_password=False)


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """An async engine on asyncpg; connections are checked before use so a restarted server is
    reconnected to instead of failing the next transaction."""
    return create_async_engine(async_url(url), pool_size=pool_size, pool_pre_ping=True)


def migrate(url: str) -> None:
    """Bring the database to the latest migration. Blocking: call it outside an event loop (or in
    a thread), since Alembic's environment runs its own loop."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
