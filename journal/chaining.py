"""What both stores share of an append: the checks of a batch's places and the hashes of its rows, so
that PostgreSQL and memory refuse with the same errors and chain to the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from journal.ledger import GENESIS, event_entry, global_link, link, read_entry
from journal.store import JournalConflict, JournalGap, ReadEntry, SealedEvent


def check_places(dossier_id: str, first_seq: int, events: Sequence[SealedEvent], stored: int,
                 kept: Sequence[tuple[str, datetime]]) -> bool:
    """Whether the batch is to be written (False: a retry of a batch already there).

    `stored` is the dossier's last seq; `kept` the (type, instant) of the events already at the
    batch's places, read only when `stored` reaches the batch's end.

    Raises:
        JournalConflict: other events stand at those places.
        JournalGap: the batch does not start right after the dossier's last event.
    """
    last_seq = first_seq + len(events) - 1
    if stored >= last_seq:
        # A retry of a batch already committed writes nothing; another batch at those places
        # (written meanwhile by someone else) must not be taken for it.
        if list(kept) != [(e.type, e.occurred_at) for e in events]:
            raise JournalConflict(
                f"journal de {dossier_id} : les événements {first_seq}–{last_seq} sont déjà écrits, et ce ne "
                "sont pas ceux de ce lot"
            )
        return False
    if stored != first_seq - 1:
        raise JournalGap(
            f"journal de {dossier_id} : dernier événement {stored}, lot à partir de {first_seq} — un trou ou "
            "un doublon serait créé"
        )
    return True


def event_rows(dossier_id: str, workflow_id: str, first_seq: int, events: Sequence[SealedEvent],
               previous: bytes | None) -> list[dict[str, Any]]:
    """The batch's rows with their per-dossier `hash`, chained from the dossier's last hash."""
    rows: list[dict[str, Any]] = []
    chained = previous if previous is not None else GENESIS
    for i, e in enumerate(events):
        row: dict[str, Any] = {
            "dossier_id": dossier_id, "seq": first_seq + i, "type": e.type, "actor": e.actor,
            "occurred_at": e.occurred_at, "workflow_id": workflow_id, "key_id": e.key_id, "sealed": e.sealed,
        }
        chained = row["hash"] = link(chained, event_entry(row))
        rows.append(row)
    return rows


def read_row(entry: ReadEntry) -> dict[str, Any]:
    """A read-log entry's row with its `hash` (reads are not chained to one another per dossier)."""
    row: dict[str, Any] = {"dossier_id": entry.dossier_id, "at": entry.at, "actor": entry.actor, "what": entry.what,
                           "via": entry.via, "granted": entry.granted, "reason": entry.reason}
    row["hash"] = link(GENESIS, read_entry(row))
    return row


def place(head: tuple[int, bytes], dossier_id: str, hashes: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """(`gseq`, `ghash`) of entries of one dossier put, in order, after the global chain's `head`."""
    gseq, ghash = head
    placed = []
    for entry in hashes:
        gseq, ghash = gseq + 1, global_link(ghash, dossier_id, entry)
        placed.append((gseq, ghash))
    return placed
