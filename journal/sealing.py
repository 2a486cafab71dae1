"""Events in and out of the journal: sealed with the dossier's data key on the way in, opened on the
way out. The store keeps bytes; this is where they become events again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from domain.events import Event
from journal.keys import DossierKeys, Tampered, seal, unseal
from journal.store import JournalStore, Projection, SealedEvent

EVENT: TypeAdapter[Event] = TypeAdapter(Event)


class EventRow(Protocol):
    """What `open_event` reads of a journal row (a `StoredEvent`, or a row a test read itself)."""

    @property
    def dossier_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def sealed(self) -> bytes | None: ...
    @property
    def payload(self) -> Any: ...


async def seal_event(keys: DossierKeys, dossier_id: str, seq: int, event: Event) -> tuple[str, bytes]:
    """The event as the journal stores it: sealed with the dossier's data key, bound to its place
    (dossier, seq) so that a row copied elsewhere does not open."""
    key_id, key = await keys.current(dossier_id)
    return key_id, seal(key, EVENT.dump_json(event), _aad(dossier_id, seq))


async def open_event(keys: DossierKeys, row: EventRow) -> Event:
    """An event back from a journal row (`dossier_id`, `seq`, `key_id`, `sealed`, `payload`).

    Raises:
        KeyProblem: the dossier's key is missing or destroyed, or the row was altered.
    """
    what = f"événement {row.seq} du dossier {row.dossier_id}"
    try:
        if row.sealed is None:  # written before encryption (migration 0002)
            return EVENT.validate_python(row.payload)
        key = await keys.get(row.dossier_id, row.key_id or "")
        return EVENT.validate_json(unseal(key, bytes(row.sealed), _aad(row.dossier_id, row.seq), what))
    except ValidationError:
        raise Tampered(f"{what} : ce n’est plus un événement lisible (journal altéré).") from None


def _aad(dossier_id: str, seq: int) -> bytes:
    return f"amiflow:event:{dossier_id}:{seq}".encode()


async def append_events(store: JournalStore, keys: DossierKeys, dossier_id: str, workflow_id: str, first_seq: int,
                        events: Sequence[Event], projection: Projection) -> int:
    """Seal the events at their places and append them with the projection after them; returns how many
    were written (0 when a previous attempt already wrote them).

    Raises:
        JournalConflict: other events stand at those places.
        JournalGap: `first_seq` is not the dossier's next number.
    """
    sealed = []
    for i, e in enumerate(events):
        key_id, blob = await seal_event(keys, dossier_id, first_seq + i, e)
        sealed.append(SealedEvent(seq=first_seq + i, type=e.type, actor=str(e.actor), occurred_at=e.at, key_id=key_id,
                                  sealed=blob))
    return await store.append(dossier_id, workflow_id, first_seq, sealed, projection)
