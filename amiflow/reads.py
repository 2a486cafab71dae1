"""The read log: every read of confidential content, granted or refused, with who, what, when and
why. The decision is `domain.reading`'s; this module asks it and records the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.journal import chain
from activities.schema import reads
from amiflow.ledger import GENESIS, link, read_entry
from amiflow.logs import logger
from domain.access import Actor
from domain.reading import ReadDecision, Reading, Sight, may_read
from domain.state import DossierState


async def record(engine: AsyncEngine, dossier_id: str, actor: Actor, what: str, via: str,
                 decision: ReadDecision, at: datetime) -> None:  # fmt: skip
    """Write one entry of the read log, chained like the journal's events."""
    row: dict[str, Any] = {"dossier_id": dossier_id, "at": at, "actor": str(actor), "what": what, "via": via,
           "granted": decision.granted, "reason": decision.reason}  # fmt: skip
    row["hash"] = link(GENESIS, read_entry(row))
    async with engine.begin() as conn:
        [(gseq, ghash)] = await chain(conn, dossier_id, [row["hash"]])
        await conn.execute(reads.insert().values(**row, gseq=gseq, ghash=ghash))
    logger(dossier_id=dossier_id, actor=str(actor)).info("read", what=what, via=via, granted=decision.granted)


async def authorise(engine: AsyncEngine, state: DossierState, actor: Actor, reading: Reading, via: str,
                    at: datetime, what: str | None = None) -> ReadDecision:  # fmt: skip
    """Ask the rules whether `actor` may read, and record the answer before anything is shown."""
    decision = may_read(state, actor, reading)
    await record(engine, state.id, actor, what or reading.value, via, decision, at)
    return decision


async def log_sight(engine: AsyncEngine, dossier_id: str, actor: Actor | None, sight: Sight, via: str,
                    at: datetime) -> None:  # fmt: skip
    """Record what `domain.reading.sight` says must be logged, before anything is shown."""
    for entry in sight.logged:
        assert actor is not None  # nothing is logged for a reader without identity
        await record(engine, dossier_id, actor, entry.what, via,
                     ReadDecision(granted=entry.granted, reason=entry.reason), at)  # fmt: skip


async def read_log(engine: AsyncEngine, dossier_id: str) -> list[dict[str, Any]]:
    """The dossier's read log, oldest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(reads).where(reads.c.dossier_id == dossier_id).order_by(reads.c.id))
        return [dict(row._mapping) for row in rows]
