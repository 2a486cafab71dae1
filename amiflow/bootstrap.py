"""One bootstrap for every entry point (CLI, worker, codec server, API, bench, tests): settings, the
journal's engine and store, the keyring and the dossiers' keys, the vault, and the Temporal client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from temporalio.client import Client

from amiflow.settings import Settings
from amiflow.temporal import connect
from amiflow.vault import Vault
from domain.errors import DomainError
from journal.keys import DossierKeys, Keyring
from journal.postgres import PostgresStore
from journal.store import JournalStore

T = TypeVar("T")


class NeedTemporal(StrEnum):
    """What a use case needs of Temporal: what reads only the journal runs years later without it."""

    REQUIRED = "required"
    OPTIONAL = "optional"  # the client is None when Temporal does not answer
    NONE = "none"


@dataclass
class Runtime:
    """What a use case talks to: the journal's store, the keys, the vault, Temporal."""

    settings: Settings
    store: JournalStore
    keys: DossierKeys
    vault: Vault
    client: Client | None = None

    def temporal(self) -> Client:
        """The Temporal client, or the reason it is missing."""
        if self.client is None:
            raise DomainError(f"Temporal injoignable à {self.settings.temporal_address}.")
        return self.client


class NoStack(DomainError):
    """No database configured: nothing was started in this data directory."""

    code = "no_stack"


@asynccontextmanager
async def runtime(settings: Settings, temporal: NeedTemporal = NeedTemporal.REQUIRED,
                  pool_size: int = 2) -> AsyncIterator[Runtime]:
    """Assemble the runtime of `settings`; the store's connections are closed on exit.

    Raises:
        NoStack: no database URL (no stack in the data directory, no AMIFLOW_DATABASE_URL).
        KeyProblem: the keyring of a used data directory is missing (never created here).
    """
    if not settings.database_url:
        raise NoStack(
            f"Aucune pile dans {settings.data_dir} : lancez `make run` (ou amiflow up), "
            "ou donnez AMIFLOW_TEMPORAL_ADDRESS et AMIFLOW_DATABASE_URL."
        )
    keyring = Keyring.open(settings.data_dir)  # never created here: `amiflow up` (or a person) does
    store = PostgresStore.from_url(settings.database_url, pool_size=pool_size)
    keys = DossierKeys(keyring, store)
    try:
        client = None
        if temporal is not NeedTemporal.NONE:
            try:
                client = await connect(settings.temporal_address, keys, settings.namespace)
            except RuntimeError as exc:
                if temporal is NeedTemporal.REQUIRED:
                    raise DomainError(f"Temporal injoignable à {settings.temporal_address} ({exc}).") from None
        yield Runtime(settings, store, keys, Vault(settings.vault_dir, keys), client)
    finally:
        await store.dispose()


def run(settings: Settings, work: Callable[[Runtime], Awaitable[T]],
        temporal: NeedTemporal = NeedTemporal.REQUIRED) -> T:
    """Run one use case to its end in a fresh event loop (the CLI's way)."""
    import asyncio

    async def go() -> T:
        async with runtime(settings, temporal) as rt:
            return await work(rt)

    return asyncio.run(go())


def memory_runtime(settings: Settings, keyring: Keyring, client: Any = None) -> Runtime:
    """A runtime on the in-memory store: the service layer's fast tests."""
    from journal.memory import MemoryStore

    store = MemoryStore()
    keys = DossierKeys(keyring, store)
    return Runtime(settings, store, keys, Vault(settings.vault_dir, keys), client)
