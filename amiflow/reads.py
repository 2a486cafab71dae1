"""The read log: every read of confidential content, granted or refused, with who, what, when and
why. The decision is `domain.reading`'s; this module asks it and records the answer."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from domain.access import Actor
from domain.dossier import DossierState
from domain.reading import ReadDecision, Reading, may_read
from journal.logs import logger
from journal.store import JournalStore, ReadEntry


async def record(store: JournalStore, dossier_id: str, actor: Actor, what: str, via: str,
                 decision: ReadDecision, at: datetime) -> None:  # fmt: skip
    """Write one entry of the read log, chained like the journal's events."""
    await store.record_read(ReadEntry(dossier_id=dossier_id, at=at, actor=str(actor), what=what, via=via,
                                      granted=decision.granted, reason=decision.reason))  # fmt: skip
    logger(dossier_id=dossier_id, actor=str(actor)).info("read", what=what, via=via, granted=decision.granted)


async def authorise(store: JournalStore, state: DossierState, actor: Actor, reading: Reading, via: str,
                    at: datetime, what: str | None = None) -> ReadDecision:  # fmt: skip
    """Ask the rules whether `actor` may read, and record the answer before anything is shown."""
    decision = may_read(state, actor, reading)
    await record(store, state.id, actor, what or reading.value, via, decision, at)
    return decision


async def read_log(store: JournalStore, dossier_id: str) -> list[dict[str, Any]]:
    """The dossier's read log, oldest first."""
    return [asdict(r) for r in await store.reads(dossier_id)]
