"""The people the tests act as, put in the directory of a test's journal: the CLI's `--as ROLE:NAME`
is refused for anyone not there with that role (the call files' `staff:` lists seed only staff and
committee)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from journal.postgres import PostgresStore
from journal.store import JournalStore, PersonRow

CALLS = ("hdf-pmcb-reemploi", "hdf-pmcb-reemploi-copie", "hdf-ressourceries", "normandie-crec-2018")
PEOPLE: dict[str, tuple[tuple[str, str | None], ...]] = {
    "amelie": tuple(("staff", c) for c in CALLS),
    "guichet": tuple(("staff", c) for c in CALLS),
    "bruno": (("staff", "normandie-crec-2018"),),
    "cora": tuple(("committee", c) for c in CALLS),
    "rita": (("reviewer", None),),
    "remi": (("reviewer", None),),
    "odile": (("auditor", None),),
    "aude": (("auditor", None),),
    "acme": (("holder", None),),
    "other": (("holder", None),),
    "intrus": (("holder", None),),
}


async def add_test_people(store: JournalStore) -> None:
    """Put the tests' people in the directory (again: replaced as they were)."""
    for name, grants in PEOPLE.items():
        await store.put_person(PersonRow(name=name, email=None, grants=grants))


def add_people_to_stack(data: Path) -> None:
    """The same, in the database of a stack `amiflow up` runs in `data`."""
    url = json.loads((data / "stack.json").read_text(encoding="utf-8"))["database_url"]

    async def put() -> None:
        store = PostgresStore.from_url(url, pool_size=1)
        try:
            await add_test_people(store)
        finally:
            await store.dispose()

    asyncio.run(put())
