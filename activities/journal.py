"""The journal: one activity appends a dossier's new events and updates the projections in the
same transaction. Idempotent: a retry after a crash never writes an event twice nor leaves a gap."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import APPEND, LOAD, OPEN_DOSSIERS, AppendEvents, LoadDossier, OpenDossiers
from activities.schema import call_counts, dossiers, events, journal_head
from amiflow.keys import DossierKeys, KeyDestroyed, Tampered, seal, unseal
from amiflow.ledger import GENESIS, event_entry, global_link, link
from amiflow.logs import logger
from domain.decider import replay
from domain.dossier import DossierState, Event, Status

EVENT = TypeAdapter(Event)


async def seal_event(keys: DossierKeys, dossier_id: str, seq: int, event: Event) -> tuple[str, bytes]:
    """The event as the journal stores it: sealed with the dossier's data key, bound to its place
    (dossier, seq) so that a row copied elsewhere does not open."""
    key_id, key = await keys.current(dossier_id)
    return key_id, seal(key, EVENT.dump_json(event), _aad(dossier_id, seq))


async def open_event(keys: DossierKeys, row: Any) -> Event:
    """An event back from a journal row (`dossier_id`, `seq`, `key_id`, `sealed`, `payload`).

    Raises:
        KeyProblem: the dossier's key is missing or destroyed, or the row was altered.
    """
    what = f"événement {row.seq} du dossier {row.dossier_id}"
    try:
        if row.sealed is None:  # written before encryption (migration 0002)
            return EVENT.validate_python(row.payload)
        key = await keys.get(row.dossier_id, row.key_id)
        return EVENT.validate_json(unseal(key, bytes(row.sealed), _aad(row.dossier_id, row.seq), what))
    except ValidationError:
        raise Tampered(f"{what} : ce n’est plus un événement lisible (journal altéré).") from None


def _aad(dossier_id: str, seq: int) -> bytes:
    return f"amiflow:event:{dossier_id}:{seq}".encode()


async def chain(conn: AsyncConnection, dossier_id: str, hashes: list[bytes]) -> list[tuple[int, bytes]]:
    """Place entries of one dossier (by their hash) at the end of the global chain, in this
    transaction: their (`gseq`, `ghash`). The head row is locked until commit, so the chain has one
    order."""
    head = (await conn.execute(select(journal_head.c.gseq, journal_head.c.ghash)
                               .where(journal_head.c.id == 1).with_for_update())).one()  # fmt: skip
    gseq, ghash = int(head.gseq), bytes(head.ghash)
    placed = []
    for entry in hashes:
        gseq, ghash = gseq + 1, global_link(ghash, dossier_id, entry)
        placed.append((gseq, ghash))
    await conn.execute(update(journal_head).where(journal_head.c.id == 1).values(gseq=gseq, ghash=ghash))
    return placed


def _own_dossier(dossier_id: str, what: str) -> None:
    """Refuse a dossier other than the one the calling workflow is: a workflow (whoever started it)
    reads and writes its own journal only."""
    caller = activity.info().workflow_id
    if caller != dossier_id:
        raise ApplicationError(f"le workflow {caller} ne peut pas {what} le journal du dossier {dossier_id}",
                               type="ForeignDossier", non_retryable=True)  # fmt: skip


class JournalActivities:
    """Side effects on the journal database. Built once per worker with its engine."""

    def __init__(self, engine: AsyncEngine, keys: DossierKeys) -> None:
        self.engine = engine
        self.keys = keys

    @activity.defn(name=APPEND)
    async def append(self, batch: AppendEvents) -> int:
        """Append the batch and update the projections; returns how many events were written
        (0 when a previous attempt already committed them)."""
        _own_dossier(batch.dossier_id, "écrire dans")
        last_seq = batch.first_seq + len(batch.events) - 1
        await self.keys.current(batch.dossier_id)  # outside the transaction: it may need a connection of its own
        async with self.engine.begin() as conn:
            # Serialise writers of one dossier (a retry can overlap a slow first attempt).
            await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(batch.dossier_id))))
            last = select(func.coalesce(func.max(events.c.seq), 0))
            stored = int(await conn.scalar(last.where(events.c.dossier_id == batch.dossier_id)) or 0)
            if stored >= last_seq:
                # A retry of a batch already committed writes nothing; another batch at those places
                # (written meanwhile by someone else) must not be taken for it.
                kept = (await conn.execute(select(events.c.type, events.c.occurred_at).where(
                    events.c.dossier_id == batch.dossier_id, events.c.seq >= batch.first_seq,
                    events.c.seq <= last_seq).order_by(events.c.seq))).all()  # fmt: skip
                if [(t, at) for t, at in kept] != [(e.type, e.at) for e in batch.events]:
                    raise ApplicationError(
                        f"journal de {batch.dossier_id} : les événements {batch.first_seq}–{last_seq} sont déjà "
                        "écrits, et ce ne sont pas ceux de ce lot",
                        type="JournalConflict", non_retryable=True,
                    )  # fmt: skip
                return 0
            if stored != batch.first_seq - 1:
                raise ApplicationError(
                    f"journal de {batch.dossier_id} : dernier événement {stored}, lot à partir de "
                    f"{batch.first_seq} — un trou ou un doublon serait créé",
                    type="JournalGap",
                    non_retryable=True,
                )
            before = await conn.scalar(select(events.c.hash).where(events.c.dossier_id == batch.dossier_id,
                                                                   events.c.seq == stored))  # fmt: skip
            previous = bytes(before) if before is not None else GENESIS
            rows: list[dict[str, Any]] = []
            for i, e in enumerate(batch.events):
                seq = batch.first_seq + i
                key_id, sealed = await seal_event(self.keys, batch.dossier_id, seq, e)
                row: dict[str, Any] = {
                    "dossier_id": batch.dossier_id, "seq": seq, "type": e.type, "actor": str(e.actor),
                    "occurred_at": e.at, "workflow_id": batch.workflow_id, "key_id": key_id, "sealed": sealed,
                }  # fmt: skip
                previous = row["hash"] = link(previous, event_entry(row))
                rows.append(row)
            placed = await chain(conn, batch.dossier_id, [r["hash"] for r in rows])
            for row, (gseq, ghash) in zip(rows, placed, strict=True):
                row |= {"gseq": gseq, "ghash": ghash}
            await conn.execute(events.insert(), rows)
            await self._project(conn, batch)
        logger(dossier_id=batch.dossier_id, workflow_id=batch.workflow_id).info(
            "journal.appended", first_seq=batch.first_seq, count=len(rows), status=batch.status.value
        )
        return len(rows)

    @activity.defn(name=LOAD)
    async def load(self, request: LoadDossier) -> DossierState:
        """The dossier's state, replayed from its journaled events opened with its keys: what a
        reopened dossier's workflow starts from (never a state a client sends)."""
        _own_dossier(request.dossier_id, "lire")
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(events.c.dossier_id, events.c.seq, events.c.key_id, events.c.sealed, events.c.payload)
                .where(events.c.dossier_id == request.dossier_id).order_by(events.c.seq)
            )).all()  # fmt: skip
        if not rows:
            raise ApplicationError(f"Dossier inconnu « {request.dossier_id} ».", type="UnknownDossier",
                                   non_retryable=True)  # fmt: skip
        try:
            return replay([await open_event(self.keys, row) for row in rows])
        except (KeyDestroyed, Tampered) as exc:  # no retry will open it (a missing key may come back: retried)
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from None

    async def _project(self, conn: AsyncConnection, batch: AppendEvents) -> None:
        previous = await conn.scalar(
            select(dossiers.c.status).where(dossiers.c.dossier_id == batch.dossier_id).with_for_update()
        )
        values = {
            "call_id": batch.call_id, "phase_id": batch.phase_id, "holder": batch.holder,
            "status": batch.status.value, "version": batch.version,
            "next_deadline": batch.next_deadline, "next_deadline_kind": batch.next_deadline_kind,
            "submitted_at": batch.submitted_at, "updated_at": datetime.now(UTC),
        }  # fmt: skip
        upsert = insert(dossiers).values(dossier_id=batch.dossier_id, **values)
        await conn.execute(upsert.on_conflict_do_update(index_elements=["dossier_id"], set_=values))
        if previous == batch.status.value:
            return
        if previous is not None:
            await conn.execute(
                update(call_counts)
                .where(and_(call_counts.c.call_id == batch.call_id, call_counts.c.status == previous))
                .values(count=call_counts.c.count - 1)
            )
        bump = insert(call_counts).values(call_id=batch.call_id, status=batch.status.value, count=1)
        await conn.execute(
            bump.on_conflict_do_update(
                index_elements=["call_id", "status"], set_={"count": call_counts.c.count + 1}
            )
        )

    @activity.defn(name=OPEN_DOSSIERS)
    async def open_dossiers(self, query: OpenDossiers) -> list[str]:
        """Ids of the dossiers of that phase that are still open."""
        closed = [s.value for s in Status if not s.is_open]
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(dossiers.c.dossier_id)
                .where(dossiers.c.call_id == query.call_id, dossiers.c.phase_id == query.phase_id,
                       dossiers.c.status.not_in(closed))  # fmt: skip
                .order_by(dossiers.c.dossier_id)
            )
            return [row[0] for row in result]
